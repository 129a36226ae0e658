package realserver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim/loopdns"
)

// The launcher's own contract: jabberd2's processes and the component
// that stands in for its session manager come up on loopback, and Stop
// leaves neither a process nor a goroutine behind (TestMain's goleak).
func TestJabberd2StartsAndStops(t *testing.T) {
	requireInstalled(t, "jabberd2")
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	j, err := StartJabberd2("jabberd2.test", Jabberd2Settings{PEMFile: true, RequireTLS: true, Cert: certs.Valid}, pki, dns.Addr())
	require.NoError(t, err)
	assert.Equal(t, "jabberd2.test", j.Domain())
	assert.Contains(t, j.Log(), "jabberd2.test")
	// A trigger for a domain nobody serves is sent (jabberd2 then fails
	// to resolve it, which is its business, not the launcher's).
	assert.NoError(t, j.Trigger(context.Background(), "nobody.test"))
	assert.NoError(t, j.Stop())
}

func TestJabberd2KnobsMapToItsProfile(t *testing.T) {
	k, err := LookupKind("jabberd2")
	require.NoError(t, err)
	s, err := k.Parse(map[string]string{"require_tls": "true"})
	require.NoError(t, err)
	assert.Equal(t, "pemfile+require-tls", s.ID())
	assert.Equal(t, policy.Required, s.Policy().TLS)
	s, err = k.Parse(map[string]string{"pemfile": "false"})
	require.NoError(t, err)
	p := s.Policy()
	assert.True(t, p.LegacyStreams, "without a certificate jabberd2 opens pre-1.0 streams")
	assert.Equal(t, policy.NotSupported, p.TLS)
	assert.Equal(t, policy.NotSupported, p.SASL, "jabberd2 never does SASL EXTERNAL on s2s")
}
