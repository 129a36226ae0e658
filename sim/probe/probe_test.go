package probe

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/scenarios"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
	"xmppneg/sim/resolve"
)

// TestMain checks for leaked goroutines; under -short (the hermetic
// loop) it keeps real servers from starting at all.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Setenv(realserver.NoRealServersEnv, "1")
	}
	goleak.VerifyTestMain(m)
}

// lab is a loopback DNS server, the servers it publishes, and a probe
// environment whose harness both ends find through it.
type lab struct {
	t   testing.TB
	dns *loopdns.Server
	env *Env
	srv *sim.Network
}

func newLab(t testing.TB, harnessSpec string) *lab {
	t.Helper()
	d, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	res := &resolve.Resolver{Server: d.Addr(), Timeout: 2 * time.Second}
	hs, err := policy.ParseSpecFrom(Settings(), harnessSpec)
	require.NoError(t, err)
	n := sim.NewNetwork()
	n.UseDNS(res)
	h, err := sim.NewEndpoint(sim.Config{Domain: "harness.test", Settings: hs, Net: n, Unlisted: true, Timeout: 2 * time.Second})
	require.NoError(t, err)
	require.NoError(t, h.Start())
	t.Cleanup(func() { h.Close() })
	require.NoError(t, d.Set("harness.test", h.Addr()))
	pki, err := certs.Default()
	require.NoError(t, err)
	env := NewEnv(h, n)
	env.Resolver, env.PKI, env.Timeout = res, pki, 2*time.Second
	// The servers find the harness, and one another, through DNS too.
	srv := sim.NewNetwork()
	srv.UseDNS(res)
	return &lab{t: t, dns: d, env: env, srv: srv}
}

// server starts an endpoint for domain and publishes its SRV record.
func (l *lab) server(domain, spec string) *sim.Endpoint {
	l.t.Helper()
	s, err := policy.ParseSpec(spec)
	require.NoError(l.t, err)
	e, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: l.srv, Unlisted: true, Timeout: 2 * time.Second})
	require.NoError(l.t, err)
	require.NoError(l.t, e.Start())
	l.t.Cleanup(func() { e.Close() })
	require.NoError(l.t, l.dns.Set(domain, e.Addr()))
	return e
}

func TestProbeFindsTheServerThroughSRV(t *testing.T) {
	l := newLab(t, "")
	l.server("a.test", "tls=Required")
	r := l.env.Probe(context.Background(), "a.test", "")
	require.NotNil(t, r.Resolution)
	require.Len(t, r.Targets, 1)
	tg := r.Targets[0]
	assert.Equal(t, "_xmpp-server._tcp SRV", tg.Via)
	assert.True(t, tg.Reachable)
	assert.Equal(t, "required", tg.StartTLS)
	assert.Equal(t, []string{"1.3", "1.2"}, tg.Accepted())
	require.NotNil(t, tg.Chain)
	assert.True(t, tg.Chain.Trusted && tg.Chain.Complete && tg.Chain.NamesFor)
	assert.Equal(t, "works", r.Verdict(), r.Diagnosis)
	assert.Empty(t, r.Findings)
}

// The classic field failure the harness used to misdiagnose: the server
// connects back to verify dialback, requires TLS there, and the harness
// has no certificate to offer STARTTLS with.
func TestProbeSeesTheVerifyBack(t *testing.T) {
	l := newLab(t, "cert=missing")
	l.server("a.test", "tls=Required,sasl=NotSupported")
	r := l.env.Probe(context.Background(), "a.test", "")
	assert.Equal(t, "fails", r.Verdict())
	require.NotEmpty(t, r.Inbound, "the server's connection back is recorded")
	all := strings.Join(r.Diagnosis, "\n")
	assert.Contains(t, all, "a.test connected back at ")
	assert.Contains(t, all, "the harness had no certificate, so it could offer no STARTTLS")
	assert.NotContains(t, all, "--dns-listen", "the harness was found: no advice about DNS")
	// Without a certificate the harness is offered no EXTERNAL: that is
	// not seen, not taken for SASL NotSupported.
	require.NotNil(t, r.Learned)
	assert.Contains(t, strings.Join(r.Learned.Unknown, "\n"), "the harness showed no certificate, so whether EXTERNAL is offered was not seen")
}

// A dialback verify connection that asks, gets its answer and ends has
// done its job: it is not a failure, in the report or the diagnosis.
func TestVerifyConnectionDoingItsJobIsNoFailure(t *testing.T) {
	l := newLab(t, "")
	l.server("db.test", "sasl=NotSupported")
	r := l.env.Probe(context.Background(), "db.test", "")
	assert.Equal(t, "works", r.Verdict(), r.Diagnosis)
	var verify *sim.Result
	for _, in := range r.Inbound {
		if in.Role == "authoritative" {
			verify = in
		}
	}
	require.NotNil(t, verify, "db.test verified the harness's dialback key with it")
	assert.True(t, verify.VerifyAnswered)
	assert.Nil(t, verify.Outcome.Failure)
	assert.Contains(t, verify.Explain(), "db.test → harness.test: verify connection: answered db.test's db:verify for stream ")
	assert.Contains(t, verify.Explain(), "valid")
	var b strings.Builder
	WriteText(&b, r, false)
	assert.NotContains(t, b.String(), "undefined-condition")
	assert.NotContains(t, b.String(), "without authentication and without an error")
	assert.NotContains(t, strings.Join(r.Diagnosis, "\n"), "failed")
}

// The harness authenticates (<success/> received) and the server's
// answer to the ping must come over a stream of its own, which never
// comes: the server cannot find the harness. The success is kept, and
// the reply path is a finding of its own, with its diagnosis.
func TestProbeKeepsTheSuccessWhenTheReplyNeverComes(t *testing.T) {
	t.Parallel()
	l := newLab(t, "")
	// A server that answers over a stream of its own and finds nobody:
	// no DNS, no address book.
	s, err := policy.ParseSpec("answer_pings=own-stream")
	require.NoError(t, err)
	lost, err := sim.NewEndpoint(sim.Config{Domain: "lost.test", Settings: s, Net: sim.NewNetwork(), Unlisted: true, Timeout: 2 * time.Second})
	require.NoError(t, err)
	require.NoError(t, lost.Start())
	t.Cleanup(func() { lost.Close() })
	require.NoError(t, l.dns.Set("lost.test", lost.Addr()))

	r := l.env.Probe(context.Background(), "lost.test", "")
	assert.Equal(t, outcome.SASLOverTLS, r.Negotiation.Authenticated, "the success is kept")
	assert.Equal(t, "fails", r.Verdict(), "its replies cannot reach the harness")
	require.NotNil(t, r.Reply)
	var b strings.Builder
	WriteText(&b, r, false)
	text := b.String()
	assert.Contains(t, text, "  harness.test → lost.test: authenticated with SASL over TLS\n")
	assert.Contains(t, text, "  reply path: lost.test's answer to the harness's ping never came within 2s, neither on this stream nor over a stream of its own to harness.test\n")
	assert.NotContains(t, text, "timeout during stream")
	all := strings.Join(r.Diagnosis, "\n")
	assert.Contains(t, all, "harness.test → lost.test authenticates with SASL over TLS, but lost.test's replies do not reach the harness")
	assert.Contains(t, all, "lost.test never connected back to the harness within 2s")
	assert.Equal(t, "SASL over TLS, no reply", r.Method())
}

// From what it observed, the probe derives the server's settings as a
// partner sees them: the Lync triple, the certificate's state, the TLS
// versions, and the closest profile with its evidence.
func TestProbeLearnsTheServersSettings(t *testing.T) {
	t.Parallel()
	l := newLab(t, "")
	for spec, want := range map[string]struct {
		row  string
		cert certs.State
		spec string
	}{
		"tls=Required,sasl=NotSupported":                 {"M13", certs.Valid, "tls=Required,sasl=NotSupported,dialback=true,cert=valid"},
		"cert=self-signed":                               {"M9", certs.SelfSigned, "tls=Optional,sasl=Optional,dialback=true,cert=self-signed"},
		"tls_min=1.0,tls_max=1.1":                        {"M9", certs.Valid, "tls_min=1.0,tls_max=1.1"},
		"tls=NotSupported,sasl=NotSupported":             {"M17", certs.Missing, "tls=NotSupported,sasl=NotSupported,dialback=true,cert=missing"},
		"cert=srv-name-only,tls=Required,dialback=false": {"M8", certs.SRVNameOnly, "tls=Required,sasl=Optional,dialback=false,cert=srv-name-only"},
	} {
		domain := strings.NewReplacer("=", "-", ",", "-", ".", "", "_", "-").Replace(spec) + ".test"
		l.server(domain, spec)
		r := l.env.Probe(context.Background(), domain, "")
		require.NotNil(t, r.Learned, spec)
		row, _ := policy.Full.Lookup(r.Learned.Settings.Policy)
		assert.Equal(t, want.row, row.ID, spec)
		assert.Equal(t, want.cert, r.Learned.Cert, spec)
		assert.Contains(t, r.Learned.Spec, want.spec, spec)
		assert.NotEmpty(t, r.Learned.Profile, spec)
		assert.NotEmpty(t, r.Learned.Evidence, spec)
		assert.Len(t, r.Partners, len(policy.Profiles()), spec)
	}
	// No TLS version in common: EXTERNAL was never seen, and the
	// report says so rather than guess.
	r := l.env.Probe(context.Background(), "tls-min-10-tls-max-11.test", "")
	assert.Contains(t, strings.Join(r.Learned.Unknown, "\n"), "whether EXTERNAL is offered was not seen")

	r = l.env.Probe(context.Background(), "nowhere.test", "")
	assert.Nil(t, r.Learned, "nothing reached, nothing learned")
	assert.Equal(t, "unreachable", r.Verdict())
}

func TestProbeNamesWhatIsWrongWithTheServer(t *testing.T) {
	l := newLab(t, "")
	l.server("chain.test", "cert=missing-intermediate")
	l.server("old.test", "tls_min=1.0,tls_max=1.1")
	l.server("edge.test", "cert=srv-name-only")
	l.server("soon.test", "cert=expiring-soon")
	l.dns.SetSRV(resolve.ServiceStartTLS, "none.test", loopdns.SRV{Target: "."})
	for domain, want := range map[string]string{
		"chain.test": "sends an incomplete certificate chain",
		"old.test":   "still accepts TLS 1.0",
		"edge.test":  "names xmpp.edge.test, not edge.test",
		"soon.test":  "expires in 4 days",
	} {
		r := l.env.Probe(context.Background(), domain, "")
		assert.Contains(t, strings.Join(r.Findings, "\n"), want, domain)
	}
	r := l.env.Probe(context.Background(), "none.test", "")
	assert.Equal(t, "unreachable", r.Verdict())
	assert.Contains(t, r.Diagnosis[0], `publishes an SRV record with target "."`)
}

// 20 domains served by the harness's own endpoints in assorted states,
// probed 8 at a time (issue target: under 5 s on 2 cores).
func BenchmarkProbeDomains(b *testing.B) {
	l := newLab(b, "")
	states := []string{"", "cert=expired", "cert=self-signed", "cert=missing-intermediate", "tls_min=1.0,tls_max=1.1",
		"cert=no-client-auth", "tls=Required,sasl=NotSupported", "cert=srv-name-only", "cert=expiring-soon", "tls=NotSupported"}
	var domains []string
	for i := 0; i < 20; i++ {
		d := fmt.Sprintf("d%02d.test", i)
		l.server(d, states[i%len(states)])
		domains = append(domains, d)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for _, d := range domains {
			wg.Add(1)
			sem <- struct{}{}
			go func(d string) {
				defer wg.Done()
				defer func() { <-sem }()
				l.env.Probe(context.Background(), d, "")
			}(d)
		}
		wg.Wait()
	}
}

// Every failure of the shipped failures suite gets advice of its own,
// not only its message repeated.
func TestEveryFailureHasAdvice(t *testing.T) {
	s, err := scenarios.Load("failures")
	require.NoError(t, err)
	ns := scenarios.Run(context.Background(), s.Cases, scenarios.Options{})
	for _, n := range ns {
		f := n.Observed().Failure
		if f == nil {
			continue
		}
		text, specific := Advice(f, nil)
		assert.True(t, specific, "%s: %s", n.Case.ID, text)
		assert.Contains(t, text, f.Message, n.Case.ID)
	}
}

// A domain whose DNS lists 16 targets of 40 addresses each: the probe
// scans at most resolve.MaxAddrs of them (it opened ~3,970 sockets at
// once with 248 each), and says how many it left.
func TestProbeScansBoundedAddresses(t *testing.T) {
	l := newLab(t, "")
	var recs []loopdns.SRV
	for i := range resolve.MaxTargets {
		host := fmt.Sprintf("t%d.evil.test", i)
		recs = append(recs, loopdns.SRV{Target: host, Port: 9, Priority: uint16(i)})
		var ips []net.IP
		for j := range 40 {
			ips = append(ips, net.IPv4(127, byte(100+i), 0, byte(1+j)))
		}
		require.NoError(t, l.dns.SetHost(host, ips...))
	}
	l.dns.SetSRV(resolve.ServiceStartTLS, "evil.test", recs...)
	r := l.env.Probe(context.Background(), "evil.test", "")
	assert.Len(t, r.Targets, resolve.MaxAddrs)
	var b strings.Builder
	WriteText(&b, r, false)
	assert.Contains(t, b.String(), fmt.Sprintf("%d more addresses not tried (at most %d in all are, each once)", 40-resolve.MaxAddrs, resolve.MaxAddrs))
}

// A server that floods the harness with connections back makes one
// diagnosis line, counted, not one line each.
func TestConnectionsBackAreAggregated(t *testing.T) {
	l := newLab(t, "")
	rep := &Report{Domain: "flood.test", Harness: "harness.test", Targets: []*Target{},
		Negotiation: &sim.Result{Outcome: outcome.Succeeded(outcome.SASLOverTLS)}}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 3000 {
		rep.Inbound = append(rep.Inbound, &sim.Result{At: start.Add(time.Duration(i) * time.Millisecond),
			Outcome: outcome.Failed(outcome.Failure{Step: outcome.StepStream, Condition: outcome.ConnectionClosed, Message: "closed before its stream header, 100% silent"})})
	}
	rep.Inbound = append(rep.Inbound, &sim.Result{At: start, Outcome: outcome.Succeeded(outcome.SASLOverTLS)})
	got := diagnose(rep, l.env)
	require.Len(t, got, 3, got)
	assert.Equal(t, "flood.test connected back 3000 times, from 03:04:05 to 03:04:07, each time (a stream of its own to harness.test, to verify dialback or to answer): closed before its stream header, 100% silent", got[1])
	assert.Contains(t, got[2], "flood.test connected back at 03:04:05 (a stream of its own")
}

// A target that accepts and says nothing: its scan says "timed out",
// not "refused" nor "STARTTLS not offered", and nothing is learned
// from it.
func TestSilentTargetTimesOut(t *testing.T) {
	t.Parallel()
	l := newLab(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	l.env.Timeout = 150 * time.Millisecond
	tg := &Target{Target: resolve.Target{Host: "127.0.0.1", Via: "--addr"}, Addr: ln.Addr().String()}
	l.env.scan(context.Background(), "silent.test", tg)
	assert.Equal(t, "timed out", tg.StartTLS)
	rep := &Report{Domain: "silent.test", Targets: []*Target{tg}}
	var b strings.Builder
	WriteText(&b, rep, false)
	assert.Contains(t, b.String(), "TLS 1.3 timed out, TLS 1.2 timed out")
	assert.NotContains(t, b.String(), "refused")
	assert.Empty(t, observe(rep).starttls, "nothing learned from a silent target")
}

// Scans of one probe hold at most MaxScans connections at once (a
// probe opened a socket for every address at once: 3,977 fds).
func TestScansAreBoundedAtOnce(t *testing.T) {
	t.Parallel()
	l := newLab(t, "")
	l.env.Timeout = 50 * time.Millisecond
	var mu sync.Mutex
	open, most := 0, 0
	var wg sync.WaitGroup
	defer wg.Wait()
	var targets []*Target
	for range 5 * MaxScans {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				open++
				most = max(most, open)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = io.Copy(io.Discard, c) // silent, until the scan hangs up
					c.Close()
					mu.Lock()
					open--
					mu.Unlock()
				}()
			}
		}()
		targets = append(targets, &Target{Target: resolve.Target{Host: "127.0.0.1"}, Addr: ln.Addr().String()})
	}
	l.env.scanAll(context.Background(), "silent.test", targets)
	mu.Lock()
	defer mu.Unlock()
	// Seen from the servers, a connection the scan has closed counts
	// until its end reaches them: one more per scan, at most.
	assert.LessOrEqual(t, most, 2*MaxScans, "all %d at once when unbounded", 5*MaxScans)
	assert.Positive(t, most)
}

// A peer's certificate names what it likes: what the probe reports of it
// is printable, as certs.Analyze leaves it to its callers.
func TestPrintableChain(t *testing.T) {
	esc := "evil\x1b[2J\u202e"
	c := printableChain(certs.Chain{Subject: "CN=" + esc, Issuer: "CN=" + esc, Names: []string{esc, "ok.test"},
		Trust: "issued by " + esc + ", a CA nobody here trusts", Problem: "names " + esc})
	for _, s := range append([]string{c.Subject, c.Issuer, c.Trust, c.Problem}, c.Names...) {
		assert.NotContains(t, s, "\x1b", "a terminal escape reached the report")
		assert.NotContains(t, s, "\u202e", "a bidi override reached the report")
	}
	assert.Equal(t, "ok.test", c.Names[1])
}
