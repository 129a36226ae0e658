package realserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/sim/loopdns"
)

// Both generations of both servers run side by side: each kind starts
// the program of its own version (as the process itself reports it),
// and answers an s2s stream.
func TestGenerationsSideBySide(t *testing.T) {
	t.Parallel()
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	for _, tc := range []struct {
		kind, version string
		knobs         map[string]string
		features      []string
	}{
		{"prosody-0.12", "Prosody 0.12.", nil, []string{"starttls"}},
		{"prosody-13", "Prosody 13.", map[string]string{"s2s_bidi": "true"}, []string{"starttls", "urn:xmpp:stream-limits:0", "max-bytes"}},
		{"ejabberd-23", "ejabberd 23.", map[string]string{"s2s_use_starttls": "optional"}, []string{"starttls"}},
		{"ejabberd-24", "ejabberd 24.", map[string]string{"s2s_use_starttls": "optional", "bidi": "true"}, []string{"starttls"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			requireInstalled(t, tc.kind)
			k, err := LookupKind(tc.kind)
			require.NoError(t, err)
			s, err := k.Parse(tc.knobs)
			require.NoError(t, err)
			srv, err := s.Start(k.Name+".test", pki, dns.Addr())
			require.NoError(t, err)
			defer srv.Stop()
			assert.Contains(t, srv.(Versioned).Version(), tc.version)
			got := streamFeatures(t, srv.Addr(), srv.Domain())
			t.Logf("%s offers: %s", tc.kind, got)
			for _, f := range tc.features {
				assert.Contains(t, got, f)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			assert.NoError(t, srv.Trigger(ctx, "nowhere.test"), "it takes a stanza to send")
		})
	}
}

func TestKindAliases(t *testing.T) {
	for alias, name := range map[string]string{"prosody-0.12": "prosody", "ejabberd-23": "ejabberd", "prosody-13": "prosody-13", "ejabberd-24": "ejabberd-24"} {
		k, err := LookupKind(alias)
		require.NoError(t, err)
		assert.Equal(t, name, k.Name)
	}
	s, err := prosody13Kind.Parse(map[string]string{"s2s_bidi": "true"})
	require.NoError(t, err)
	assert.Equal(t, "prosody-13", s.Kind())
	assert.Equal(t, "require-encryption+dialback+bidi", s.ID())
	_, err = prosodyKind.Parse(map[string]string{"s2s_bidi": "true"})
	assert.ErrorContains(t, err, `prosody has no knob "s2s_bidi"`, "Prosody 0.12 has no mod_s2s_bidi")
	s, err = ejabberd24Kind.Parse(map[string]string{"bidi": "true", "s2s_use_starttls": "required"})
	require.NoError(t, err)
	assert.Equal(t, "ejabberd-24", s.Kind())
	assert.NotEqual(t, ShareKey(s), ShareKey(EjabberdSettings{StartTLS: "required"}), "one process runs one version")
}
