package realserver

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/sim/loopdns"
)

// leftBehind lists what a run left in dir, the temporary directory.
func leftBehind(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// No start leaves a temporary directory behind, whether it fails (here
// on a certificate state no PKI issues, after the directory was made) or
// succeeds and is stopped.
func TestNoStartLeavesItsDirectoryBehind(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	for _, s := range []Setting{
		ProsodySettings{RequireEncryption: true, Dialback: true, Cert: "no-such-state"},
		EjabberdSettings{StartTLS: "optional", Dialback: true, Cert: "no-such-state"},
		Jabberd2Settings{PEMFile: true, Cert: "no-such-state"},
	} {
		requireInstalled(t, s.Kind())
		_, err := s.Start(s.Kind()+".test", pki, dns.Addr())
		require.Error(t, err, s.Kind())
		assert.Empty(t, leftBehind(t, tmp), "%s left its directory after failing: %v", s.Kind(), err)
	}
}

// A server without a certificate is a real setting: Prosody starts
// without one (no STARTTLS to offer), and its directory goes with Stop.
func TestProsodyWithoutACertificate(t *testing.T) {
	requireInstalled(t, "prosody")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	p, err := StartProsody("bare.test", ProsodySettings{RequireEncryption: false, Dialback: true, Cert: certs.Missing}, pki, dns.Addr())
	require.NoError(t, err)
	assert.NotEmpty(t, leftBehind(t, tmp))
	require.NoError(t, p.Stop())
	assert.Empty(t, leftBehind(t, tmp), "Stop removes the directory")
}

// ejabberd without a certificate starts too: there is none to wait for.
func TestEjabberdWithoutACertificate(t *testing.T) {
	requireInstalled(t, "ejabberd")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	x, err := StartEjabberd("bare.test", EjabberdSettings{StartTLS: "optional", Dialback: true, Cert: certs.Missing}, pki, dns.Addr())
	require.NoError(t, err)
	require.NoError(t, x.Stop())
	assert.Empty(t, leftBehind(t, tmp), "Stop removes the directory")
}

// A domain that is a path is refused before anything is written: it
// used to write evil.crt and evil.key outside the server's directory
// (overwriting a key there) before the server failed on the name. No
// server is started, so this runs without them.
func TestPathDomainIsRefusedBeforeAnyFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	pki, err := certs.Default()
	require.NoError(t, err)
	for _, s := range []Setting{
		ProsodySettings{RequireEncryption: true, Dialback: true},
		EjabberdSettings{StartTLS: "optional", Dialback: true},
		Jabberd2Settings{PEMFile: true},
	} {
		_, err := s.Start("../../../"+tmp+"/x/evil", pki, "127.0.0.1:53")
		require.Error(t, err, s.Kind())
		assert.Contains(t, err.Error(), "invalid domain", s.Kind())
		assert.Empty(t, leftBehind(t, tmp), "%s wrote files for an invalid domain", s.Kind())
	}
}
