package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
	"xmppneg/sim"
)

func startServer(t *testing.T, domain, spec string, peers ...string) *sim.Endpoint {
	t.Helper()
	s, err := policy.ParseSpec(spec)
	require.NoError(t, err)
	n := sim.NewNetwork()
	for _, p := range peers {
		d, addr, _ := strings.Cut(p, "=")
		n.Register(d, addr)
	}
	ep, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: n})
	require.NoError(t, err)
	require.NoError(t, ep.Start())
	t.Cleanup(func() { ep.Close() })
	return ep
}

func TestProbeReportsOffersCertificateAndMethod(t *testing.T) {
	// The server answers the ping over a stream of its own, so it must
	// find the harness: on a port chosen here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	harnessAddr := ln.Addr().String()
	ln.Close()
	srv := startServer(t, "server.test", "tls=Required,sasl=Optional,dialback=true", "harness.test="+harnessAddr)
	code, out, stderr := runCLI("probe", "--domain", "server.test", "--addr", srv.Addr(), "--from", "harness.test", "--listen", harnessAddr)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "offered before TLS:    starttls (required)")
	assert.Contains(t, out, "offered after TLS:     SASL EXTERNAL, dialback")
	assert.Contains(t, out, "server certificate:    CN=server.test DNS:server.test")
	assert.Contains(t, out, "authenticated with SASL over TLS")
	assert.Contains(t, out, "diagnosis: federation works with SASL over TLS.")
	assert.Contains(t, out, "certificate purposes:  serverAuth and clientAuth only")
	assert.NotContains(t, out, "finding:")

	code, out, _ = runCLI("probe", "--domain", "server.test", "--addr", srv.Addr(), "--policy", "tls=NotSupported")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "diagnosis: the two sides disagree about TLS: receiver requires TLS but initiator does not support it")

}

// A server whose certificate has no clientAuth EKU works with the
// harness, and the probe says where it will not, and what to do.
func TestProbeFlagsACertificateWithoutClientAuth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	harnessAddr := ln.Addr().String()
	ln.Close()
	srv := startServer(t, "le.test", "tls=Required,sasl=Optional,dialback=true,cert=no-client-auth", "harness.test="+harnessAddr)
	code, out, stderr := runCLI("probe", "--domain", "le.test", "--addr", srv.Addr(), "--listen", harnessAddr, "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var got struct {
		Result struct {
			TLS sim.TLSInfo `json:"tls"`
		} `json:"result"`
		Findings []string `json:"findings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, "serverAuth only", got.Result.TLS.PeerPurposes)
	require.Len(t, got.Findings, 1)
	assert.Contains(t, got.Findings[0], "has no clientAuth EKU")
	assert.Contains(t, got.Findings[0], "ejabberd before 25.08")
	assert.Contains(t, got.Findings[0], "-SupportDialbackNegotiation $true")
}

// syncBuffer is a buffer serve can write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls out until re matches, within a deadline.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case <-deadline:
			t.Fatalf("no %q in serve's output:\n%s", re, out.String())
		case <-tick.C:
		}
	}
}

func TestServePrintsInboundNegotiationsUntilInterrupted(t *testing.T) {
	n := sim.NewNetwork()
	// A partner whose certificate is what public CAs issue since 2026
	// (serverAuth only). serve answers its ping over a stream of its own,
	// as real servers do, so it is told where le.test listens.
	s, _ := policy.ParseSpec("tls=Required,sasl=Required,dialback=false,cert=no-client-auth")
	le, err := sim.NewEndpoint(sim.Config{Domain: "le.test", Settings: s, Net: n})
	require.NoError(t, err)
	require.NoError(t, le.Start())
	defer le.Close()

	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run([]string{"serve", "--domain", "harness.test", "--listen", "127.0.0.1:0", "--policy", "tls=Required", "--peer", "le.test=" + le.Addr()}, &out, &errb)
	}()
	addr := waitFor(t, &out, regexp.MustCompile(`serving harness\.test on (127\.0\.0\.1:\d+)`))[1]

	s, _ = policy.ParseSpec("tls=NotSupported,sasl=NotSupported")
	n.Register("harness.test", addr)
	peer, err := sim.NewEndpoint(sim.Config{Domain: "peer.test", Settings: s, Net: n})
	require.NoError(t, err)
	require.NoError(t, peer.Start())
	defer peer.Close()
	r := peer.Initiate(context.Background(), "harness.test")
	require.False(t, r.Outcome.OK())
	waitFor(t, &out, regexp.MustCompile(`peer\.test → harness\.test: FAILED`))
	assert.Contains(t, out.String(), "receiver requires TLS but initiator does not support it")

	// The partner of 2026 authenticates with serve's default settings.
	r = le.Initiate(context.Background(), "harness.test")
	require.True(t, r.Outcome.OK(), "%s", r.Outcome.Explain())
	waitFor(t, &out, regexp.MustCompile(`le\.test → harness\.test: .*SASL over TLS`))

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	assert.Contains(t, out.String(), "stopping")
}

// A probe that times out says after how long it gave up: the --timeout
// given, not the default.
func TestProbeTimeoutIsTheOneGiven(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		// A server that accepts and never says a word.
		if c, err := ln.Accept(); err == nil {
			held <- c
		}
	}()
	start := time.Now()
	code, out, _ := runCLI("probe", "--domain", "silent.test", "--addr", ln.Addr().String(), "--timeout", "400ms")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "no answer from the receiver within 400ms")
	assert.Less(t, time.Since(start), 3*time.Second)
	select {
	case c := <-held:
		c.Close()
	default:
	}
}

func TestProbeUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"probe", "--domain", "x.test", "--addr", "localhost"}, `--addr "localhost" is not HOST:PORT`},
		{[]string{"probe", "--domain", "x.test", "--addr", "localhost:"}, `--addr "localhost:" is not HOST:PORT`},
		{[]string{"probe", "--domain", "x.test", "--addr", "127.0.0.1:5269", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"probe", "--domain", "server.test"}, "--domain and --addr are required"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}
