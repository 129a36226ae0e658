package relay

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"go.uber.org/goleak"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRelayIsTransparent puts the relay between two of the harness's
// endpoints, as between two real servers: the outcome each direction
// comes to is the same with and without it, and the recording alone
// classifies it as the endpoints saw it.
func TestRelayIsTransparent(t *testing.T) {
	pki, err := certs.New()
	if err != nil {
		t.Fatal(err)
	}
	spec := func(s string) policy.Settings {
		p, err := policy.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		in, re string
	}{
		{"sasl over tls", "tls=Optional,sasl=Optional,dialback=true", "tls=Optional,sasl=Optional,dialback=true"},
		{"tls dialback", "tls=Required,sasl=NotSupported,dialback=true", "tls=Optional,sasl=Optional,dialback=true"},
		{"tcp dialback", "tls=NotSupported,sasl=NotSupported,dialback=true", "tls=Optional,sasl=NotSupported,dialback=true"},
		// The wire does not say which decision an initiator's stream error
		// right after the features ends: the recording places it in the
		// step the stream was in, as a receiver sees it, which is where
		// the profiles of real initiators put it (missing_tls=give-up-at-stream).
		{"no tls for the initiator", "tls=NotSupported,sasl=NotSupported,dialback=true,missing_tls=give-up-at-stream", "tls=Required,sasl=Optional,dialback=false"},
		{"refused after tls", "tls=Required,sasl=Optional,dialback=true,cert=expired", "tls=Required,sasl=Required,dialback=false,refuse=after-tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := negotiate(t, pki, spec(tc.in), spec(tc.re), false)
			relayed, c := negotiateRelayed(t, pki, spec(tc.in), spec(tc.re))
			if !relayed.Outcome.Same(direct.Outcome) {
				t.Errorf("through the relay: %s; directly: %s", relayed.Outcome, direct.Outcome)
			}
			if !c.Outcome.Match(direct.Outcome.Strip()) && !(c.Outcome.OK() && c.Outcome.Method == direct.Outcome.Method) {
				t.Errorf("the recording says %s; the endpoints saw %s\n%s", c.Outcome, direct.Outcome, transcript(c.Transcript))
			}
		})
	}
}

func transcript(es []sim.Entry) string {
	s := ""
	for _, e := range es {
		s += e.Conn + " " + e.From + ": " + e.XML + "\n"
	}
	return s
}

func negotiate(t *testing.T, pki *certs.PKI, in, re policy.Settings, _ bool) *sim.Result {
	t.Helper()
	n := sim.NewNetwork()
	a, b := start(t, pki, n, "a.test", in), start(t, pki, n, "b.test", re)
	defer a.Close()
	defer b.Close()
	n.Register("a.test", a.Addr())
	n.Register("b.test", b.Addr())
	return a.Initiate(context.Background(), "b.test")
}

func negotiateRelayed(t *testing.T, pki *certs.PKI, in, re policy.Settings) (*sim.Result, Classification) {
	t.Helper()
	n := sim.NewNetwork()
	a, b := start(t, pki, n, "a.test", in), start(t, pki, n, "b.test", re)
	defer a.Close()
	defer b.Close()
	rec := NewRecorder()
	cert := func(d string, s policy.Settings) *tls.Certificate {
		if s.Cert == certs.Missing {
			return nil
		}
		c, err := pki.Certificate(d, s.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	all := []*tls.Certificate{cert("a.test", in), cert("b.test", re)}
	ra, err := Start(Config{Domain: "a.test", Target: a.Addr(), Cert: cert("a.test", in), PeerCerts: all, Roots: pki.Roots(), Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := Start(Config{Domain: "b.test", Target: b.Addr(), Cert: cert("b.test", re), PeerCerts: all, Roots: pki.Roots(), Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	n.Register("a.test", ra.Addr())
	n.Register("b.test", rb.Addr())
	rec.Mark("a.test", "b.test", time.Now())
	res := a.Initiate(context.Background(), "b.test")
	// The endpoints are done: what the relay saw has ended too.
	a.Close()
	b.Close()
	ra.Close()
	rb.Close()
	return res, rec.Classify("a.test", "b.test", false)
}

func start(t *testing.T, pki *certs.PKI, n *sim.Network, domain string, s policy.Settings) *sim.Endpoint {
	t.Helper()
	e, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: n, PKI: pki, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSplitter(t *testing.T) {
	sp := newSplitter(1 << 10)
	var got []string
	for _, chunk := range []string{"<?xml version='1.0'?><stream:stream to='b' xmlns='jabber:server'>", "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><req", "uired/></starttls></stream:features> <db:result to='b' from='a'>k</db:result>", "</stream:stream>"} {
		got = append(got, sp.feed([]byte(chunk))...)
	}
	want := []string{"<?xml version='1.0'?><stream:stream to='b' xmlns='jabber:server'>",
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
		"<db:result to='b' from='a'>k</db:result>", "</stream:stream>"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %q, want %q", i, got[i], want[i])
		}
	}
	if c := condition("<stream:error><text>x</text><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", ""); c != outcome.PolicyViolation {
		t.Errorf("condition: %q", c)
	}
}
