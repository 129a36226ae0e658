package probe

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
	"xmppneg/sim/realserver"
)

// ejabberd starts a private ejabberd published in the lab's DNS.
func (l *lab) ejabberd(domain string, s realserver.EjabberdSettings) *realserver.Ejabberd {
	l.t.Helper()
	if err := realserver.Require(s.Kind()); err != nil {
		l.t.Fatalf("%v", err)
	}
	x, err := realserver.StartEjabberd(domain, s, l.env.PKI, l.dns.Addr())
	require.NoError(l.t, err)
	l.t.Cleanup(func() { x.Stop() })
	require.NoError(l.t, l.dns.Set(domain, x.Addr()))
	return x
}

// A harness without a certificate gets TLS Dialback from ejabberd, which
// checks the harness's key over a verify connection of its own. That
// connection ends without authenticating anything, as designed: the
// probe shows it as the check it is, not as a failure.
func TestProbeRealEjabberdVerifyConnection(t *testing.T) {
	t.Parallel()
	skipInShort(t)
	l := newLab(t, "cert=missing")
	l.ejabberd("ejabberd.test", realserver.EjabberdSettings{StartTLS: "optional", Dialback: true, Cert: certs.Valid})
	r := l.env.Probe(context.Background(), "ejabberd.test", "")
	require.NotNil(t, r.Negotiation)
	assert.True(t, r.Negotiation.Outcome.OK(), r.Negotiation.Explain())
	assert.Equal(t, outcome.TLSDialback, r.Negotiation.Outcome.Method, "no certificate for EXTERNAL: dialback")
	var b strings.Builder
	WriteText(&b, r, false)
	text := b.String()
	assert.Contains(t, text, "as authoritative: ejabberd.test → harness.test: verify connection: answered ejabberd.test's db:verify")
	assert.NotContains(t, text, "undefined-condition")
	assert.NotContains(t, text, "without authentication and without an error")
}
