package realserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports for real servers are chosen below the kernel's ephemeral range,
// where no outgoing connection of any program takes one for itself, at
// random (parallel test processes seldom meet), never twice by one
// process, and only once a bind shows the port free. A port taken
// between that check and the server's own bind is told by the server's
// "address already in use", and the start is tried again on other ports
// (see startRetrying).
var ports = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// portRange is where server ports are chosen: the 12,000 ports below the
// ephemeral range (32768–60999 on Linux by default).
func portRange() (lo, hi int) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low < 12000+1024 {
		// An unusual ephemeral range leaves no room below it: above it
		// then, up to the last port.
		return 61000, 65535
	}
	return low - 12000, low
}

// allocPort returns a loopback TCP port that is free now and that this
// process has not handed out before (a variable, for the tests that hand
// out a taken one).
var allocPort = allocFreePort

func allocFreePort() (int, error) {
	lo, hi := portRange()
	ports.Lock()
	defer ports.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if ports.given[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		ports.given[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("realserver: no free port between %d and %d after 200 tries", lo, hi)
}

// startAttempts is how many times a start whose port was taken is tried.
const startAttempts = 4

// startRetrying runs start until it succeeds, fails for another reason
// than a taken port, or has been tried startAttempts times.
func startRetrying[T any](start func() (T, error)) (T, error) {
	var v T
	var err error
	for range startAttempts {
		if v, err = start(); err == nil || !errors.Is(err, errPortTaken) {
			return v, err
		}
	}
	return v, fmt.Errorf("%w (tried %d times on other ports)", err, startAttempts)
}

// FreePort returns a loopback TCP port that is free now, below the
// ephemeral range and not handed out before by this process: for a
// listener that must be named before it exists (a harness address a
// server or a probe is told of). A port picked from the ephemeral range
// ("127.0.0.1:0", then closed) was taken by another test's outgoing
// connection before its listener bound it, on a busy machine.
func FreePort() (int, error) { return allocPort() }
