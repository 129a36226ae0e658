package probe

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
	"xmppneg/sim/resolve"
)

// startProsody starts a private Prosody published in the lab's DNS.
func (l *lab) prosody(domain string, s realserver.ProsodySettings) *realserver.Prosody {
	l.t.Helper()
	if err := realserver.Require(s.Kind()); err != nil {
		l.t.Fatalf("%v", err)
	}
	p, err := realserver.StartProsody(domain, s, l.env.PKI, l.dns.Addr())
	require.NoError(l.t, err)
	l.t.Cleanup(func() { p.Stop() })
	require.NoError(l.t, l.dns.Set(domain, p.Addr()))
	return p
}

// Against a real Prosody found through SRV: the full report, the
// verify-back seen when the harness has no certificate, and a chain
// sent without its intermediate.
func TestProbeRealProsody(t *testing.T) {
	t.Parallel()
	skipInShort(t)
	l := newLab(t, "")
	l.prosody("prosody.test", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid})
	r := l.env.Probe(context.Background(), "prosody.test", "")
	require.Len(t, r.Targets, 1)
	assert.Equal(t, "_xmpp-server._tcp SRV", r.Targets[0].Via)
	assert.Equal(t, "required", r.Targets[0].StartTLS)
	assert.Equal(t, "works", r.Verdict(), r.Diagnosis)
	require.NotEmpty(t, r.Inbound, "Prosody answers the ping over a stream of its own")
	require.NotNil(t, r.Learned)
	assert.Equal(t, "prosody-0.12", r.Learned.Profile, "%+v", r.Learned)
	assert.Equal(t, certs.Valid, r.Learned.Cert)
	assert.Equal(t, "tls=Required,sasl=Optional,dialback=true", r.Learned.Settings.Policy.String())

	// Without a certificate the harness cannot offer Prosody the TLS it
	// requires on its connection back: the diagnosis says so.
	bare := newLab(t, "cert=missing")
	bare.prosody("prosody.test", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid})
	r = bare.env.Probe(context.Background(), "prosody.test", "")
	assert.Equal(t, "fails", r.Verdict())
	all := strings.Join(r.Diagnosis, "\n")
	assert.Contains(t, all, "prosody.test connected back at ")
	assert.Contains(t, all, "the harness had no certificate, so it could offer no STARTTLS")

	chain := newLab(t, "")
	chain.prosody("chain.test", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.MissingIntermediate})
	r = chain.env.Probe(context.Background(), "chain.test", "")
	require.NotNil(t, r.Targets[0].Chain)
	assert.False(t, r.Targets[0].Chain.Complete)
	assert.Contains(t, strings.Join(r.Findings, "\n"), "chain.test sends an incomplete certificate chain")
}

// Prosody's direct TLS port (s2s_direct_tls_ports), published as
// _xmpps-server: the probe scans it without STARTTLS and the harness
// negotiates over it.
func TestProbeRealProsodyDirectTLS(t *testing.T) {
	t.Parallel()
	skipInShort(t)
	l := newLab(t, "")
	p := l.prosody("prosody.test", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid, DirectTLS: true})
	_, port, err := net.SplitHostPort(p.DirectAddr())
	require.NoError(t, err)
	n, _ := strconv.Atoi(port)
	l.dns.SetSRV(resolve.ServiceDirectTLS, "prosody.test", loopdns.SRV{Target: "127.0.0.1", Port: uint16(n), Priority: 0})
	r := l.env.Probe(context.Background(), "prosody.test", "")
	require.Len(t, r.Targets, 2)
	assert.True(t, r.Targets[0].DirectTLS)
	assert.Equal(t, "direct TLS", r.Targets[0].StartTLS)
	assert.Contains(t, r.Targets[0].Accepted(), "1.3", "%+v", r.Targets[0].Versions)
	require.NotEmpty(t, r.Negotiation.Attempts)
	assert.True(t, r.Negotiation.Attempts[0].Target.DirectTLS)
	assert.Equal(t, "connected", r.Negotiation.Attempts[0].Result)
	assert.Equal(t, "works", r.Verdict(), r.Diagnosis)
	assert.True(t, r.Negotiation.Offers[0].TLS, "the first stream with Prosody was inside TLS")
}

// skipInShort skips a test that needs a real server in the hermetic loop
// (go test -short); go test and make test run it.
func skipInShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Prosody: go test -short runs no real server (go test and make test do)")
	}
}
