package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckNamesWhatIsWrong(t *testing.T) {
	p, err := New()
	require.NoError(t, err)
	for _, tc := range []struct {
		state State
		usage x509.ExtKeyUsage
		err   string
	}{
		{Valid, x509.ExtKeyUsageClientAuth, ""},
		{Valid, x509.ExtKeyUsageServerAuth, ""},
		{Expired, x509.ExtKeyUsageServerAuth, "expired"},
		{SelfSigned, x509.ExtKeyUsageServerAuth, "self-signed"},
		{Untrusted, x509.ExtKeyUsageServerAuth, "untrusted authority"},
		{WrongName, x509.ExtKeyUsageServerAuth, "names wrong-name.invalid, not a.test"},
		{NoClientAuth, x509.ExtKeyUsageClientAuth, "clientAuth"},
		{NoClientAuth, x509.ExtKeyUsageServerAuth, ""},
		{MissingIntermediate, x509.ExtKeyUsageServerAuth, `incomplete certificate chain: issued by the intermediate "xmppneg intermediate CA", which the peer did not send`},
		{NotYetValid, x509.ExtKeyUsageServerAuth, "certificate not yet valid (valid from "},
		{SRVNameOnly, x509.ExtKeyUsageServerAuth, "names xmpp.a.test, a host of a.test, not the XMPP domain itself"},
		{ExpiringSoon, x509.ExtKeyUsageServerAuth, ""},
	} {
		c, err := p.Certificate("a.test", tc.state)
		require.NoError(t, err)
		got := Check([]*x509.Certificate{c.Leaf}, p.Roots(), "a.test", tc.usage, time.Now(), p.Hints())
		assert.Equal(t, got == nil, tc.state.Passes(tc.usage), "Passes agrees with Check for %s", tc.state)
		if tc.err == "" {
			assert.NoError(t, got, tc.state)
		} else if assert.Error(t, got, tc.state) {
			assert.Contains(t, got.Error(), tc.err, tc.state)
		}
	}
	// Without hints, an incomplete chain is only an unknown authority.
	c, err := p.Certificate("a.test", MissingIntermediate)
	require.NoError(t, err)
	assert.ErrorContains(t, Check([]*x509.Certificate{c.Leaf}, p.Roots(), "a.test", x509.ExtKeyUsageServerAuth, time.Now(), nil), "untrusted authority")
	// With its intermediate sent, the chain is good.
	assert.NoError(t, Check([]*x509.Certificate{c.Leaf, p.Inter.Cert}, p.Roots(), "a.test", x509.ExtKeyUsageServerAuth, time.Now(), nil))
	_, err = p.Certificate("a.test", Missing)
	assert.ErrorIs(t, err, ErrMissing)
	assert.EqualError(t, Check(nil, p.Roots(), "a.test", x509.ExtKeyUsageServerAuth, time.Now(), nil), "no certificate presented")
}

func TestCertificatesAreCached(t *testing.T) {
	p, err := New()
	require.NoError(t, err)
	a, _ := p.Certificate("A.test", Valid)
	b, _ := p.Certificate("a.test", Valid)
	assert.Same(t, a, b)
}

func TestPEMRoundTrip(t *testing.T) {
	p, err := New()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, p.WritePEM(dir, Valid, "a.test"))
	q, err := LoadPEM(dir)
	require.NoError(t, err)
	assert.True(t, q.CA.Cert.Equal(p.CA.Cert))
	c, err := q.Certificate("a.test", Valid)
	require.NoError(t, err)
	assert.NoError(t, Check([]*x509.Certificate{c.Leaf}, q.Roots(), "a.test", x509.ExtKeyUsageServerAuth, time.Now(), nil))
	// New certificates from the loaded CA are trusted by the original PKI.
	d, err := q.Certificate("d.test", Valid)
	require.NoError(t, err)
	assert.NoError(t, Check([]*x509.Certificate{d.Leaf}, p.Roots(), "d.test", x509.ExtKeyUsageClientAuth, time.Now(), nil))
}

func TestParseState(t *testing.T) {
	for in, want := range map[string]State{"valid": Valid, "Untrusted CA": Untrusted, "self signed": SelfSigned,
		"wrong_name": WrongName, "NO-CLIENT-AUTH": NoClientAuth} {
		got, err := ParseState(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	_, err := ParseState("rotten")
	assert.ErrorContains(t, err, "accepted values are valid, missing")
}

// Trust is judged apart from validity: an expired certificate issued by
// the harness CA is trusted, and expired; one from a CA nobody trusts is
// not trusted whatever its dates.
func TestAnalyzeSeparatesTrustFromValidity(t *testing.T) {
	pki, err := New()
	require.NoError(t, err)
	analyze := func(st State) Chain {
		c, err := pki.Certificate("a.test", st)
		require.NoError(t, err)
		return Analyze([]*x509.Certificate{c.Leaf}, pki.Roots(), nil, pki.Hints(), "a.test", time.Now())
	}
	exp := analyze(Expired)
	assert.True(t, exp.Trusted)
	assert.Equal(t, "issued by the harness CA (trusted)", exp.Trust)
	assert.True(t, exp.Expired)
	assert.Equal(t, "expired 1 day ago", exp.Validity)
	assert.Contains(t, exp.Problem, "certificate expired")

	soon := analyze(NotYetValid)
	assert.True(t, soon.Trusted)
	assert.True(t, soon.NotYetValid)
	assert.Regexp(t, `^not valid until \S+ \(in (a few minutes|\d+ hours?|1 day)\)$`, soon.Validity)

	ok := analyze(Valid)
	assert.True(t, ok.Trusted)
	assert.False(t, ok.Expired || ok.NotYetValid)
	assert.Regexp(t, `^valid for 36[45] days more$`, ok.Validity)

	rogue := analyze(Untrusted)
	assert.False(t, rogue.Trusted)
	assert.Equal(t, "issued by xmppneg untrusted CA, a CA nobody here trusts", rogue.Trust)
	assert.Equal(t, "self-signed (trusted by nobody)", analyze(SelfSigned).Trust)
}

// A domain that would leave the directory is refused before anything is
// written; a key that existed readable by everyone, or a link placed at
// a key's name, end up a 0600 file of ours, the link's target untouched.
func TestWritePEMKeepsToItsDirectoryAndKeysPrivate(t *testing.T) {
	p, err := New()
	require.NoError(t, err)
	root := t.TempDir()
	dir := filepath.Join(root, "certs")
	err = p.WritePEM(dir, Valid, "a.test", "../../evil")
	require.ErrorContains(t, err, `invalid domain "../../evil"`)
	_, serr := os.Stat(dir)
	assert.True(t, os.IsNotExist(serr), "nothing written, not even the directory")
	_, serr = os.Stat(filepath.Join(root, "evil.key"))
	assert.True(t, os.IsNotExist(serr))

	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.test.key"), []byte("old"), 0o644))
	victim := filepath.Join(root, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("keep"), 0o644))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "ca.key")))
	require.NoError(t, p.WritePEM(dir, Valid, "a.test"))
	for _, k := range []string{"a.test.key", "ca.key"} {
		fi, err := os.Lstat(filepath.Join(dir, k))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), k)
		assert.Equal(t, os.FileMode(KeyMode), fi.Mode().Perm(), k)
	}
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(got))
}
