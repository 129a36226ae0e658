package realserver

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim/loopdns"
)

// TestMain checks for leaked goroutines; under -short (the hermetic
// loop) it keeps real servers from starting at all.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Setenv(NoRealServersEnv, "1")
	}
	goleak.VerifyTestMain(m)
}

// A missing server is a failure that says how to install it, never a
// skip; only the hermetic loop (go test -short) runs none.
func requireInstalled(t *testing.T, server string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: go test -short runs no real server (go test and make test do)", server)
	}
	if err := Require(server); err != nil {
		t.Fatalf("%v", err)
	}
}

func TestProsodyShellAndStop(t *testing.T) {
	requireInstalled(t, "prosody")
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	p, err := StartProsody("prosody.test", ProsodySettings{RequireEncryption: true, Dialback: true}, pki, dns.Addr())
	require.NoError(t, err)
	out, err := p.Shell(context.Background(), "server:version()")
	require.NoError(t, err)
	assert.Contains(t, out, "0.12")
	_, err = p.Shell(context.Background(), "no_such_thing()")
	assert.Error(t, err)
	assert.Contains(t, p.Log(), "prosody.test")
	assert.NoError(t, p.Stop())
}

func TestKindsParseKnobs(t *testing.T) {
	k, err := LookupKind("prosody")
	require.NoError(t, err)
	s, err := k.Parse(map[string]string{"s2s_secure_auth": "true", "dialback": "$false"})
	require.NoError(t, err)
	assert.Equal(t, ProsodySettings{RequireEncryption: true, SecureAuth: true, Dialback: false, Cert: certs.Valid}, s)
	assert.Equal(t, "require-encryption+secure-auth", s.ID())
	assert.Equal(t, policy.Required, s.Policy().TLS)

	_, err = k.Parse(map[string]string{"s2s_use_starttls": "optional"})
	assert.EqualError(t, err, `prosody has no knob "s2s_use_starttls" (accepted: s2s_require_encryption, s2s_secure_auth, dialback, cert, s2s_direct_tls)`)
	_, err = k.Parse(map[string]string{"dialback": "perhaps"})
	assert.ErrorContains(t, err, `dialback: invalid value "perhaps": accepted values are true, false`)

	e, err := LookupKind("ejabberd")
	require.NoError(t, err)
	s, err = e.Parse(map[string]string{"s2s_use_starttls": "Required"})
	require.NoError(t, err)
	assert.Equal(t, "starttls-required+dialback", s.ID())
	_, err = e.Parse(map[string]string{"s2s_use_starttls": "sometimes"})
	assert.ErrorContains(t, err, `s2s_use_starttls: invalid value "sometimes": accepted values are false, optional, required`)

	_, err = LookupKind("openfire")
	assert.EqualError(t, err, `unknown server "openfire": accepted values are prosody, prosody-13, ejabberd, ejabberd-24, jabberd2`)
	for _, k := range Kinds() {
		assert.NotEmpty(t, k.Sweep(), k.Name)
	}
}
