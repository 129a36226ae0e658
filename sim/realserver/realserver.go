// Package realserver starts private instances of real XMPP servers
// (Prosody 0.12, ejabberd 23.01 and jabberd2 2.7, from Debian's packages) as peers of
// the harness: in a temporary directory, with a configuration generated
// from the server's own knobs, certificates from package certs, loopback
// ports only and name resolution through a loopdns responder, so that
// the server finds the harness's endpoints for dialback and outbound
// streams without touching any system file.
//
// Each server is a Kind (its knobs, the sweep of settings the interop
// suites run) whose Settings start a Server and say what they mean in
// the harness's vocabulary; the scenarios package runs negotiations with
// them like with any other endpoint.
package realserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrNotInstalled is wrapped by the errors of servers that are missing.
var ErrNotInstalled = errors.New("not installed")

// Require checks that the programs and files of a server are installed,
// and says how to install them when they are not.
func Require(server string) error {
	var missing []string
	switch server {
	case "ejabberd":
		if _, err := exec.LookPath("erl"); err != nil {
			missing = append(missing, "ejabberd")
		} else if m, _ := filepath.Glob("/usr/lib/*/ejabberd-*"); len(m) == 0 {
			missing = append(missing, "ejabberd")
		}
	case "jabberd2":
		for _, b := range []string{"jabberd2-router", "jabberd2-sm", "jabberd2-s2s"} {
			if _, err := os.Stat("/usr/sbin/" + b); err != nil {
				missing = append(missing, "jabberd2")
				break
			}
		}
	case "prosody":
		if _, err := exec.LookPath("prosody"); err != nil {
			missing = append(missing, "prosody")
		}
		if m, _ := filepath.Glob("/usr/lib/*/lua/5.4/lunbound.so"); len(m) == 0 {
			missing = append(missing, "lua-unbound")
		}
	default:
		return fmt.Errorf("realserver: unknown server %q", server)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %w: run 'make deps' as root, or: apt-get install -y %s", server, ErrNotInstalled, strings.Join(missing, " "))
	}
	return nil
}

// removeOnError removes dir when *err is set on return: a start that
// fails leaves no temporary directory behind (a start that succeeds
// leaves it to Stop).
func removeOnError(dir string, err *error) {
	if *err != nil {
		os.RemoveAll(dir)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// process is a running server process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(dir, logName string, env []string, name string, args ...string) (*process, error) {
	return startProcessStdin(dir, logName, env, nil, name, args...)
}

func startProcessStdin(dir, logName string, env []string, stdin *os.File, name string, args ...string) (*process, error) {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a stop reaches its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("did not stop within %s of SIGTERM; killed", grace)
}

// waitListening waits until addr accepts TCP connections, the process
// exits, or the deadline passes.
func waitListening(p *process, addr string, within time.Duration) error {
	return waitListeningOn(p, "tcp", addr, within)
}

func waitListeningOn(p *process, network, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout(network, addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before listening on %s: %v", addr, p.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s", addr, within)
		}
	}
}
