package sim

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a network of endpoints that a test tears down at its end.
type world struct {
	t   *testing.T
	net *Network
}

func newWorld(t *testing.T) *world { return &world{t: t, net: NewNetwork()} }

func (w *world) endpoint(domain, spec string, edit ...func(*Config)) *Endpoint {
	w.t.Helper()
	s, err := policy.ParseSpec(spec)
	require.NoError(w.t, err)
	cfg := Config{Domain: domain, Settings: s, Net: w.net}
	for _, f := range edit {
		f(&cfg)
	}
	e, err := NewEndpoint(cfg)
	require.NoError(w.t, err)
	require.NoError(w.t, e.Start())
	w.t.Cleanup(func() { e.Close() })
	return e
}

func negotiate(t *testing.T, from, to *Endpoint) *Result {
	t.Helper()
	r := from.Initiate(context.Background(), to.Domain())
	require.NotNil(t, r)
	if t.Failed() || testing.Verbose() {
		t.Log(r.Explain())
	}
	return r
}

func TestDialbackKeyXEP0185Vector(t *testing.T) {
	// XEP-0185 §3: receiving xmpp.example.com, originating example.org.
	assert.Equal(t, "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643",
		DialbackKey("s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F"))
}

func TestEachMethodSucceeds(t *testing.T) {
	for _, tc := range []struct {
		init, recv string
		want       outcome.Method
		tls        bool
	}{
		{"tls=Required,sasl=Required,dialback=false", "tls=Optional,sasl=Optional,dialback=true", outcome.SASLOverTLS, true},
		{"tls=Optional,sasl=Optional,dialback=true", "tls=Required,sasl=NotSupported,dialback=true", outcome.TLSDialback, true},
		{"tls=Optional,sasl=NotSupported,dialback=true", "tls=Optional,sasl=Optional,dialback=true", outcome.TLSDialback, true},
		{"tls=NotSupported,sasl=NotSupported,dialback=true", "tls=Optional,sasl=Optional,dialback=true", outcome.TCPDialback, false},
		{"tls=Optional,sasl=Optional,dialback=true", "tls=NotSupported,sasl=Optional,dialback=true", outcome.TCPDialback, false},
	} {
		t.Run(tc.want.String(), func(t *testing.T) {
			w := newWorld(t)
			a := w.endpoint("a.test", tc.init)
			b := w.endpoint("b.test", tc.recv)
			r := negotiate(t, a, b)
			assert.Equal(t, outcome.Succeeded(tc.want), r.Outcome, r.Explain())
			if tc.tls {
				require.NotNil(t, r.TLS)
				assert.Equal(t, "TLS 1.3", r.TLS.Version)
				assert.NotEmpty(t, r.TLS.CipherSuite)
				assert.Equal(t, "valid", r.TLS.PeerCertificate)
				if tc.want != outcome.SASLOverTLS {
					assert.Len(t, r.StreamIDs, 2, "a new stream id after TLS")
				}
			} else {
				assert.Nil(t, r.TLS)
			}
			if tc.want == outcome.SASLOverTLS {
				assert.Len(t, r.StreamIDs, 3, "new stream ids after TLS and after SASL")
			}
			if tc.want != outcome.SASLOverTLS {
				assert.True(t, hasEntry(r, "verify", "type='valid'"), "dialback went through a verify connection")
			}
			assert.True(t, hasEntry(r, "main", "urn:xmpp:ping"), "a ping proved the stream")
			assertDistinctIDs(t, r.StreamIDs)
		})
	}
}

// The second verify connection to the same authoritative server resumes
// the TLS session of the first (a full handshake only on the main
// connection): the server must keep its session ticket keys from one
// connection to the next for that to happen.
func TestVerifyConnectionResumesTLS(t *testing.T) {
	w := newWorld(t)
	a := w.endpoint("a.test", "tls=Optional,sasl=NotSupported,dialback=true")
	b := w.endpoint("b.test", "tls=Required,sasl=NotSupported,dialback=true")
	resumed := func(r *Result) bool {
		for _, n := range r.Notes {
			if n == "verify connection to a.test resumed a TLS session" {
				return true
			}
		}
		return false
	}
	first := negotiate(t, a, b)
	require.Equal(t, outcome.Succeeded(outcome.TLSDialback), first.Outcome, first.Explain())
	assert.False(t, resumed(first), "nothing to resume yet: %v", first.Notes)
	second := negotiate(t, a, b)
	require.Equal(t, outcome.Succeeded(outcome.TLSDialback), second.Outcome, second.Explain())
	assert.True(t, resumed(second), "notes: %v", second.Notes)
}

func hasEntry(r *Result, conn, substr string) bool {
	for _, e := range r.Transcript {
		if e.Conn == conn && strings.Contains(e.XML, substr) {
			return true
		}
	}
	return false
}

func assertDistinctIDs(t *testing.T, ids []string) {
	seen := map[string]bool{}
	for _, id := range ids {
		assert.False(t, seen[id], "stream id %s reused", id)
		seen[id] = true
	}
}

func TestTLSRequiredVersusNotSupported(t *testing.T) {
	w := newWorld(t)
	req := w.endpoint("req.test", "tls=Required,sasl=Optional,dialback=true")
	none := w.endpoint("none.test", "tls=NotSupported,sasl=NotSupported,dialback=true")

	r := negotiate(t, none, req)
	require.NotNil(t, r.Outcome.Failure)
	assert.Equal(t, outcome.Failure{Step: outcome.StepStartTLS, Condition: outcome.UnsupportedFeature, By: outcome.Initiator, Conn: "main",
		Message: "receiver requires TLS but initiator does not support it (TLS NotSupported)"}, stripTime(*r.Outcome.Failure))

	r = negotiate(t, req, none)
	assert.Equal(t, "failed at starttls (policy-violation by initiator)", r.Outcome.String())
	assert.Contains(t, r.Outcome.Failure.Message, "initiator requires TLS")
	assert.True(t, hasEntry(r, "main", "<stream:error><policy-violation"), "the refusal is sent, not a silent close")
}

func stripTime(f outcome.Failure) outcome.Failure { f.Elapsed = 0; return f }

// Every certificate state, with both endpoints refusing an invalid
// certificate at each point, in both directions: the engine comes to
// what the oracle predicts, step, condition and side included.
func TestCertificateStatesAgreeWithTheOracle(t *testing.T) {
	for _, st := range certs.States {
		for _, refuse := range policy.RefusalPoints {
			for _, direct := range []bool{false, true} {
				name := string(st) + "/" + refuse
				if direct {
					name += "/direct-tls"
				}
				t.Run(name, func(t *testing.T) {
					w := newWorld(t)
					spec := fmt.Sprintf("tls=Optional,sasl=Optional,dialback=true,direct_tls=%t,refuse=%s", direct, refuse)
					a := w.endpoint("a.test", spec+",cert="+string(st), refusing(refuse))
					b := w.endpoint("b.test", spec, refusing(refuse))
					for _, pair := range [][2]*Endpoint{{a, b}, {b, a}} {
						r := negotiate(t, pair[0], pair[1])
						p := policy.Predict(pair[0].Settings(), pair[1].Settings())
						assert.True(t, r.Outcome.Same(p.Outcome), "%s → %s: predicted %s, observed %s\n%v", pair[0].Domain(), pair[1].Domain(), p.Outcome, r.Outcome, p.Reasons)
					}
				})
			}
		}
	}
}

// refusing sets both refusal knobs of an endpoint to the named point.
func refusing(point string) func(*Config) {
	return func(c *Config) { _ = c.Settings.SetRefusalPoint(point) }
}

// The certificates public CAs issue since 2026 (serverAuth only) are
// good for SASL EXTERNAL under the harness's defaults, strict included;
// a clientAuth-only certificate is refused, and the refusal names the
// extended key usage.
func TestCertificatePurposes(t *testing.T) {
	w := newWorld(t)
	strict := w.endpoint("b.test", "tls=Required,sasl=Required,dialback=false,strict=true")
	le := w.endpoint("le.test", "tls=Required,sasl=Required,dialback=false,cert=no-client-auth")
	r := negotiate(t, le, strict)
	assert.Equal(t, outcome.Succeeded(outcome.SASLOverTLS), r.Outcome, r.Explain())

	clientOnly := w.endpoint("c.test", "tls=Required,sasl=Required,dialback=false,cert=client-auth-only")
	r = negotiate(t, clientOnly, strict)
	assert.Equal(t, "failed at tls-handshake (bad-certificate by receiver)", r.Outcome.String())
	assert.Contains(t, r.Outcome.Failure.Message, "certificate not valid for serverAuth: its extended key usage is clientAuth only")

	// ejabberd 23 requires clientAuth for inbound EXTERNAL, and lets the
	// peer fall back to dialback.
	ej := w.endpoint("ej.test", "profile=ejabberd-23-example")
	r = negotiate(t, w.endpoint("le2.test", "cert=no-client-auth"), ej)
	assert.Equal(t, outcome.Succeeded(outcome.TLSDialback), r.Outcome, r.Explain())
	require.Len(t, r.Recovered, 1)
	assert.Contains(t, r.Recovered[0].Message, "unsupported certificate purpose")
}

func TestDialbackWrongSecretIsInvalid(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=Optional,sasl=NotSupported,dialback=true")
	// Two nodes of a.test: the one that connects is not the one b reaches.
	node1 := w.endpoint("a.test", "tls=Optional,sasl=NotSupported,dialback=true,secret=one", func(c *Config) { c.Unlisted = true })
	w.endpoint("a.test", "tls=Optional,sasl=NotSupported,dialback=true,secret=two")

	r := negotiate(t, node1, b)
	assert.Equal(t, "failed at dialback (invalid by receiver)", r.Outcome.String())
	assert.True(t, hasEntry(r, "verify", "type='invalid'"))
	assert.True(t, hasEntry(r, "main", "type='invalid'"))
}

func TestAuthoritativeServerUnreachable(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=Optional,sasl=NotSupported,dialback=true")
	a := w.endpoint("a.test", "tls=Optional,sasl=NotSupported,dialback=true", func(c *Config) { c.Unlisted = true })

	r := negotiate(t, a, b)
	assert.Equal(t, "failed at dialback-verify (remote-server-not-found by receiver)", r.Outcome.String())

	// Registered, but nothing listens there any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	w.net.Register("a.test", ln.Addr().String())
	ln.Close()
	r = negotiate(t, a, b)
	assert.Equal(t, "failed at dialback-verify (remote-connection-failed by receiver)", r.Outcome.String())
	assert.True(t, hasEntry(r, "main", "remote-connection-failed"), "the initiator is told with a dialback error")
}

func TestSilentPeerTimesOutAtEachStep(t *testing.T) {
	const timeout = 400 * time.Millisecond
	for _, tc := range []struct {
		step         outcome.Step
		init, recv   string
		silentIsAuth bool
	}{
		{outcome.StepStream, "", "", false},
		{outcome.StepStartTLS, "", "", false},
		{outcome.StepSASL, "", "", false},
		{outcome.StepDialback, "sasl=NotSupported", "", false},
		{outcome.StepDialbackVerify, "sasl=NotSupported", "", true},
	} {
		t.Run(tc.step.String(), func(t *testing.T) {
			w := newWorld(t)
			short := func(c *Config) { c.Timeout = timeout }
			silent := func(c *Config) { c.Faults.SilentAt = tc.step }
			var a, b *Endpoint
			if tc.silentIsAuth {
				a = w.endpoint("a.test", tc.init, short, silent)
			} else {
				a = w.endpoint("a.test", tc.init, short)
			}
			if tc.silentIsAuth {
				b = w.endpoint("b.test", tc.recv, short)
			} else {
				b = w.endpoint("b.test", tc.recv, short, silent)
			}
			start := time.Now()
			r := negotiate(t, a, b)
			elapsed := time.Since(start)
			require.NotNil(t, r.Outcome.Failure, r.Explain())
			assert.Equal(t, outcome.StepTimeout, r.Outcome.Failure.Step)
			assert.Equal(t, tc.step, r.Outcome.Failure.During)
			assert.Less(t, elapsed, timeout+300*time.Millisecond, "gave up within the deadline")
		})
	}
}

func TestNoSASLBeforeTLSInAnyTranscript(t *testing.T) {
	w := newWorld(t)
	var eps []*Endpoint
	for i, p := range policy.All() {
		eps = append(eps, w.endpoint(string(rune('a'+i))+".test", p.String()))
	}
	for _, a := range eps[:6] {
		for _, b := range eps {
			r := negotiate(t, a, b)
			for _, e := range r.Transcript {
				if strings.Contains(e.XML, "<auth ") || strings.Contains(e.XML, "<mechanisms") {
					assert.True(t, e.TLS, "SASL on a plain stream: %s", e.XML)
				}
			}
		}
	}
}

// rawPeer opens a TCP connection to e and speaks raw XML, as a hostile
// or broken peer would, until e hangs up or 2 s pass.
func rawPeer(t *testing.T, e *Endpoint, lines ...string) string {
	return rawUntil(t, e, "", lines...)
}

// rawUntil is rawPeer that stops reading once the reply contains want.
func rawUntil(t *testing.T, e *Endpoint, want string, lines ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.Addr(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	return readFor(t, c, want, strings.Join(lines, ""))
}

// readFor sends s on c and reads until the reply contains want (until c
// ends, for want ""), or c's deadline passes.
func readFor(t *testing.T, c net.Conn, want, s string) string {
	t.Helper()
	_, err := c.Write([]byte(s))
	require.NoError(t, err)
	var got strings.Builder
	buf := make([]byte, 4096)
	for want == "" || !strings.Contains(got.String(), want) {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return got.String()
}

// dialbackHeader is rawHeader from domain, with the dialback namespace.
func dialbackHeader(from string) string {
	return strings.Replace(strings.Replace(rawHeader, "from='evil.test'", "from='"+from+"'", 1),
		"'jabber:server'", "'jabber:server' xmlns:db='jabber:server:dialback'", 1)
}

const rawHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='evil.test' to='b.test' version='1.0'>"

func TestHostilePeers(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=Optional,sasl=Optional,dialback=true")
	for _, tc := range []struct {
		name  string
		send  []string
		reply string
	}{
		{"stanza before authentication", []string{rawHeader, "<message to='x@b.test'><body>hi</body></message>"}, "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"},
		{"SASL on a plain stream", []string{rawHeader, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>"}, "<encryption-required/>"},
		{"wrong host", []string{strings.Replace(rawHeader, "to='b.test'", "to='c.test'", 1)}, "<host-unknown"},
		{"no from", []string{strings.Replace(rawHeader, "from='evil.test' ", "", 1)}, "<invalid-from"},
		{"client namespace", []string{strings.Replace(rawHeader, "jabber:server", "jabber:client", 1)}, "<invalid-namespace"},
		{"newer major version", []string{strings.Replace(rawHeader, " version='1.0'>", " version='2.0'>", 1)}, "<unsupported-version"},
		{"malformed XML", []string{rawHeader, "<a><b></a>"}, "</stream:stream>"},
		{"deep nesting", []string{rawHeader, strings.Repeat("<x>", 40)}, "<policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rawPeer(t, b, tc.send...)
			assert.Contains(t, got, tc.reply)
		})
	}
}

// A pre-1.0 stream (no version, RFC 6120 §4.7.5) is answered in kind,
// without features; dialback goes ahead on it.
func TestLegacyStreamsInterop(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=Optional,sasl=Optional,dialback=true")
	got := rawPeer(t, b, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>",
		"<db:result from='evil.test' to='b.test'>0123</db:result>")
	assert.Regexp(t, `<stream:stream [^>]*id=`, got)
	assert.NotRegexp(t, `<stream:stream [^>]*version=`, got)
	assert.NotContains(t, got, "<stream:features")
	assert.Contains(t, got, "remote-server-not-found", "the db:result was taken: b.test asked the authoritative server of evil.test")

	for _, recv := range []string{"tls=Optional", "tls=NotSupported", "tls=Required"} {
		w := newWorld(t)
		legacy := w.endpoint("j2.test", "profile=jabberd2-2.7,cert=missing,tls=NotSupported,legacy_streams=true")
		other := w.endpoint("b.test", recv)
		for _, pair := range [][2]*Endpoint{{legacy, other}, {other, legacy}} {
			r := negotiate(t, pair[0], pair[1])
			p := policy.Predict(pair[0].Settings(), pair[1].Settings())
			assert.True(t, r.Outcome.Same(p.Outcome), "%s: %s → %s: predicted %s, observed %s\n%s", recv, pair[0].Domain(), pair[1].Domain(), p.Outcome, r.Outcome, r.TranscriptText())
		}
	}
}

func TestConnectionLimit(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "", func(c *Config) { c.MaxConns = 1 })
	hog, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	require.NoError(t, err)
	defer hog.Close()
	// The hog holds the only slot (it is being served: b waits for its header).
	_, err = hog.Write([]byte(rawHeader))
	require.NoError(t, err)
	got := rawPeer(t, b, rawHeader)
	assert.Contains(t, got, "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
}
