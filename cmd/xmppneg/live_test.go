package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
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
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
	"xmppneg/sim/resolve"
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

// freeAddr is a loopback address nobody listens on, for the harness to
// listen on later when a server started first must know it.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := realserver.FreePort()
	require.NoError(t, err)
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func TestProbeReportsOffersCertificateAndMethod(t *testing.T) {
	// The server answers the ping over a stream of its own, so it must
	// find the harness: on a port chosen here.
	harnessAddr := freeAddr(t)
	srv := startServer(t, "server.test", "tls=Required,sasl=Optional,dialback=true", "harness.test="+harnessAddr)
	code, out, stderr := runCLI("probe", "--domain", "server.test", "--addr", srv.Addr(), "--from", "harness.test", "--listen", harnessAddr)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "offered before TLS:  starttls (required)")
	assert.Contains(t, out, "TLS versions:        TLS 1.3 accepted, TLS 1.2 accepted, TLS 1.1 refused, TLS 1.0 refused")
	assert.Contains(t, out, "offered after TLS: SASL EXTERNAL, dialback")
	assert.Contains(t, out, "certificate:         CN=server.test, issued by CN=xmppneg test CA")
	assert.Contains(t, out, "names:               server.test (the XMPP domain: covered)")
	assert.Contains(t, out, "chain:               1 sent, complete; issued by the harness CA (trusted); valid for 364 days more")
	assert.Contains(t, out, "purposes:            serverAuth and clientAuth only")
	assert.Contains(t, out, "authenticated with SASL over TLS")
	assert.Contains(t, out, "diagnosis: federation works with SASL over TLS.")
	// The server answered the ping over a stream of its own: seen too.
	assert.Regexp(t, `diagnosis: server.test connected back at \d\d:\d\d:\d\d \(a stream of its own to harness.test, to verify dialback or to answer\) and authenticated with SASL over TLS`, out)
	assert.NotContains(t, out, "finding:")

	code, out, _ = runCLI("probe", "--domain", "server.test", "--addr", srv.Addr(), "--policy", "tls=NotSupported")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "diagnosis: the two sides disagree about TLS (receiver requires TLS but initiator does not support it (TLS NotSupported)): set TLS to Optional on the side that requires it")

}

// A server whose certificate expired works with the probe, which goes on
// past it to see what the server does next: the verdict is what the
// partners that matter would do with it. Trust and validity are said
// apart.
func TestProbeJudgesTheCertificateAsPartnersWould(t *testing.T) {
	harnessAddr := freeAddr(t)
	srv := startServer(t, "old.test", "cert=expired", "harness.test="+harnessAddr)
	code, out, stderr := runCLI("probe", "--domain", "old.test", "--addr", srv.Addr(), "--listen", harnessAddr)
	assert.Equal(t, exitFail, code, "the default partner refuses it: %s\n%s", out, stderr)
	assert.Contains(t, out, "chain:               1 sent, complete; issued by the harness CA (trusted); expired 1 day ago")
	assert.Contains(t, out, "harness.test → old.test: authenticated with SASL over TLS")
	assert.NotContains(t, out, "diagnosis: federation works")
	assert.Contains(t, out, "diagnosis: the certificate of old.test is expired (expired 1 day ago): harness.test authenticated with SASL over TLS only because the probe is lenient (strict=false")
	assert.Contains(t, out, "The default partner (profile xmppneg, which checks certificates as strict servers do) fails: partner → old.test failed at tls-handshake (bad-certificate by initiator)")
	assert.Regexp(t, `(?m)^  lync2013-gateway +failed at tls-handshake \(bad-certificate by initiator\) +failed at tls-handshake \(bad-certificate by receiver\)$`, out)
	assert.Regexp(t, `(?m)^  prosody-0\.12-secure +failed at stream \(not-authorized by initiator\)`, out)
	assert.Regexp(t, `(?m)^  certificate: +expired \(expired 1 day ago\)$`, out)

	code, out, _ = runCLI("probe", "--domain", "old.test", "--addr", srv.Addr(), "--listen", harnessAddr, "-o", "junit")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, `failures="1"`)
}

// A server whose certificate has no clientAuth EKU works with the
// harness, and the probe says where it will not, and what to do.
func TestProbeFlagsACertificateWithoutClientAuth(t *testing.T) {
	harnessAddr := freeAddr(t)
	srv := startServer(t, "le.test", "tls=Required,sasl=Optional,dialback=true,cert=no-client-auth", "harness.test="+harnessAddr)
	code, out, stderr := runCLI("probe", "--domain", "le.test", "--addr", srv.Addr(), "--listen", harnessAddr, "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var got struct {
		Probes []struct {
			Targets []struct {
				Certificate struct {
					Purposes string `json:"purposes"`
				} `json:"certificate"`
			} `json:"targets"`
			Findings []string `json:"findings"`
		} `json:"probes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Probes, 1)
	require.Len(t, got.Probes[0].Targets, 1)
	assert.Equal(t, "serverAuth only", got.Probes[0].Targets[0].Certificate.Purposes)
	f := got.Probes[0].Findings
	require.Len(t, f, 1)
	assert.Contains(t, f[0], "has no clientAuth EKU")
	assert.Contains(t, f[0], "ejabberd before 25.08")
	assert.Contains(t, f[0], "-SupportDialbackNegotiation $true")
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
	// The lines of one result are written one after the other: wait for
	// the one that says why.
	waitFor(t, &out, regexp.MustCompile(`(?s)peer\.test → harness\.test: FAILED.*receiver requires TLS but initiator does not support it`))

	// The partner of 2026 authenticates with serve's default settings.
	r = le.Initiate(context.Background(), "harness.test")
	require.True(t, r.Outcome.OK(), "%s", r.Outcome.Explain())
	waitFor(t, &out, regexp.MustCompile(`le\.test → harness\.test: .*SASL over TLS`))

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case code := <-done:
		assert.Equal(t, exitInterrupted, code, "130 on SIGINT, as documented")
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	assert.Contains(t, out.String(), "stopping")
}

// serve with direct_tls=true listens for direct TLS where
// --direct-tls-listen says and publishes _xmpps-server on --dns-listen:
// the probe finds and uses it. The probe's TLS version scans show in
// serve's log as one line each, not as failed negotiations.
func TestServeDirectTLSAndScans(t *testing.T) {
	dnsAddr := freeUDPAddr(t)
	direct, harnessAddr := freeAddr(t), freeAddr(t)
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run([]string{"serve", "--domain", "served.test", "--listen", "127.0.0.1:0", "--direct-tls-listen", direct,
			"--dns-listen", dnsAddr, "--peer", "harness.test=" + harnessAddr}, &out, &errb)
	}()
	waitFor(t, &out, regexp.MustCompile(`DNS: SRV _xmpps-server\._tcp\.served\.test on udp `))
	assert.Contains(t, out.String(), "direct TLS (XEP-0368) on "+direct)

	code, pout, perr := runCLI("probe", "--domain", "served.test", "--resolver", dnsAddr, "--listen", harnessAddr)
	assert.Equal(t, exitOK, code, "%s\n%s", pout, perr)
	assert.Contains(t, pout, "SRV _xmpps-server._tcp.served.test. → 0 0 "+strings.TrimPrefix(direct, "127.0.0.1:")+" 127.0.0.1.")
	assert.Contains(t, pout, "(direct TLS), from _xmpps-server._tcp SRV")
	assert.Contains(t, pout, "tried "+direct+" (_xmpps-server._tcp SRV): connected")

	waitFor(t, &out, regexp.MustCompile(`harness\.test → served\.test: authenticated`))
	log := out.String()
	assert.Regexp(t, `(?m)^TLS 1\.1 scan from 127\.0\.0\.1:\d+, refused$`, log, "a scan on the direct TLS port")
	assert.Regexp(t, `(?m)^TLS 1\.0 scan from 127\.0\.0\.1:\d+ \(harness\.test\), refused$`, log, "a scan after STARTTLS")
	assert.Regexp(t, `(?m)^TLS 1\.3 scan from .*, accepted$`, log)
	assert.NotContains(t, log, "FAILED", "no scan is logged as a failed negotiation")

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case code := <-done:
		assert.Equal(t, exitInterrupted, code)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}

	code, _, stderr := runCLI("serve", "--domain", "x.test", "--listen", "127.0.0.1:0", "--policy", "direct_tls=true,cert=missing")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "direct_tls=true needs a certificate")
}

// freeUDPAddr is a loopback UDP address nobody uses, for a DNS server.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().String()
}

// A probe that times out says after how long it gave up: the --timeout
// given, not the default.
func TestProbeTimeoutIsTheOneGiven(t *testing.T) {
	t.Parallel()
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
		{[]string{"probe"}, "give --domain or --domains"},
		{[]string{"probe", "--domains", "x", "--addr", "127.0.0.1:5269"}, "--addr goes with --domain"},
		{[]string{"probe", "--domain", "x.test", "--resolver", "127.0.0.1"}, `--resolver "127.0.0.1" is not HOST:PORT`},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}

// probe --domains: a summary line per domain, found through DNS.
func TestProbeManyDomains(t *testing.T) {
	t.Parallel()
	d, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer d.Close()
	harnessAddr := freeAddr(t)
	require.NoError(t, d.Set("harness.test", harnessAddr))
	n := sim.NewNetwork()
	n.UseDNS(&resolve.Resolver{Server: d.Addr()})
	for domain, spec := range map[string]string{"good.test": "", "expired.test": "cert=expired", "plain.test": "tls=NotSupported,sasl=NotSupported"} {
		s, err := policy.ParseSpec(spec)
		require.NoError(t, err)
		ep, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: n, Unlisted: true})
		require.NoError(t, err)
		require.NoError(t, ep.Start())
		defer ep.Close()
		require.NoError(t, d.Set(domain, ep.Addr()))
	}
	list := filepath.Join(t.TempDir(), "domains.txt")
	require.NoError(t, os.WriteFile(list, []byte("# partners\ngood.test\nexpired.test\nplain.test\n"), 0o644))
	code, out, stderr := runCLI("probe", "--domains", list, "--resolver", d.Addr(), "--listen", harnessAddr, "-j", "3")
	assert.Equal(t, exitFail, code, "an expired certificate fails the default partner: %s\n%s", out, stderr)
	assert.Regexp(t, `good\.test\s+works\s+TLS 1\.3, 1\.2\s+valid: issued by the harness CA \(trusted\); valid for 36[45] days more`, out)
	assert.Regexp(t, `expired\.test\s+fails\s+TLS 1\.3, 1\.2\s+expired: issued by the harness CA \(trusted\); expired 1 day ago\s+SASL over TLS\s+the certificate of expired\.test is expired`, out,
		"the probe goes on past it (strict=false), and judges it as the default partner would")
	assert.Regexp(t, `plain\.test\s+works\s+none\s+`, out)
	assert.Contains(t, out, "3 domains in ")
	assert.Contains(t, out, "2 work, 1 fail, 0 unreachable")

	code, out, stderr = runCLI("probe", "--domains", list, "--resolver", d.Addr(), "--listen", harnessAddr, "-o", "json")
	assert.Equal(t, exitFail, code, stderr)
	var doc struct {
		Probes []struct {
			Domain string `json:"domain"`
		} `json:"probes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Len(t, doc.Probes, 3)
}

// xmppneg server starts a real Prosody that probe finds through the DNS
// server it prints, and stops it on Ctrl-C.
func TestServerCommandThenProbe(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs a real Prosody: go test -short runs no real server (go test and make test do)")
	}
	dir := t.TempDir()
	harnessAddr := freeAddr(t)
	cmd, stdout, stderr := subprocess(t, "server", "prosody", "--domain", "prosody.test", "--pki", filepath.Join(dir, "pki"), "--harness", "harness.test="+harnessAddr)
	lines := bufio.NewScanner(stdout)
	var probeLine string
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "probe it:") {
			probeLine = strings.TrimSpace(strings.TrimPrefix(l, "probe it:"))
			break
		}
	}
	require.NotEmpty(t, probeLine, "no probe command printed: %s", stderr)
	args := strings.Fields(probeLine)[1:] // without "xmppneg"
	code, out, perr := runCLI(args...)
	assert.Equal(t, exitOK, code, "%s\n%s", out, perr)
	assert.Contains(t, out, "from _xmpp-server._tcp SRV")
	assert.Contains(t, out, "diagnosis: federation works with SASL over TLS.")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	assert.Equal(t, exitInterrupted, waitExit(t, cmd, 15*time.Second), "130 on SIGINT, as documented: %s", stderr.String())
}

// A secret file that could be guessed or is not there stops serve before
// it listens, saying which and how to make a good one.
func TestSecretFileChecked(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "absent"), "no such file"},
		{write("empty", "\n\n"), "the first line is empty"},
		{write("short", "hunter2\n"), "the secret is 7 characters; use at least 32 random ones (openssl rand -hex 32"},
	} {
		code, _, stderr := runCLI("serve", "--domain", "h.test", "--listen", "127.0.0.1:0", "--secret-file", tc.path)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, stderr, "--secret-file: ")
		assert.Contains(t, stderr, tc.want)
	}
}

// serve stops within a second on SIGINT, whatever is open: here a
// hundred streams waiting for their next step, whose results all come
// at once as they are cut short.
func TestServeStopsFastWithManyOpenConnections(t *testing.T) {
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run([]string{"serve", "--domain", "harness.test", "--listen", "127.0.0.1:0", "--max-per-source", "200"}, &out, &errb)
	}()
	addr := waitFor(t, &out, regexp.MustCompile(`serving harness\.test on (127\.0\.0\.1:\d+)`))[1]
	header := "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='peer.test' to='harness.test' version='1.0'>"
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		require.NoError(t, err)
		conns = append(conns, c)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Write([]byte(header))
		require.NoError(t, err)
		got, err := bufio.NewReader(c).ReadString('>') // served: the answer has begun
		require.NoError(t, err, got)
	}
	start := time.Now()
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case code := <-done:
		assert.Equal(t, exitInterrupted, code, "130 on SIGINT, as documented")
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	assert.Less(t, time.Since(start), time.Second)
	assert.NotContains(t, errb.String(), "still open")
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5269": true, "127.0.0.2:1": true, "[::1]:5269": true,
		"0.0.0.0:5269": false, "[::]:5269": false, "192.0.2.1:5269": false, "localhost": false,
	} {
		assert.Equal(t, want, loopback(addr), addr)
	}
}

// What a peer puts in its stream header cannot forge a line of serve's
// output, nor reach the terminal as control characters.
func TestServeOutputCannotBeForged(t *testing.T) {
	var out, errb syncBuffer
	done := make(chan int)
	go func() {
		done <- run([]string{"serve", "--domain", "harness.test", "--listen", "127.0.0.1:0", "--transcript"}, &out, &errb)
	}()
	addr := waitFor(t, &out, regexp.MustCompile(`serving harness\.test on (127\.0\.0\.1:\d+)`))[1]
	for _, from := range []string{"x&#10;evil.test → harness.test: authenticated with SASL over TLS", "evil\u009b2J\u202e.test"} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='" +
			from + "' to='harness.test' version='1.0'>\n\x1b[2J</stream:stream>"))
		require.NoError(t, err)
		_, _ = io.ReadAll(c)
		c.Close()
	}
	waitFor(t, &out, regexp.MustCompile(`(?s)invalid-from.*invalid-from`))
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	text := out.String()
	assert.NotRegexp(t, regexp.MustCompile(`(?m)^evil\.test →`), text)
	assert.NotContains(t, text, "\x1b")
	assert.NotContains(t, text, "\u009b")
	assert.NotContains(t, text, "\u202e")
	assert.Contains(t, text, `is not a domain: invalid domain "x\nevil.test`)
	assert.Contains(t, text, "? → harness.test: FAILED")
}
