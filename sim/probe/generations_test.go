package probe

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/sim/realserver"
)

// Prosody 13 and ejabberd 24.12 negotiate as their elders do; what they
// added to their features (XEP-0478 limits; XEP-0440 channel binding and
// <bidi/> in urn:xmpp:bidi) tells them apart, so the probe names the
// generation it met rather than one of two that did alike.
func TestProbeTellsTheGenerationsApart(t *testing.T) {
	t.Parallel()
	skipInShort(t)
	for _, tc := range []struct {
		name            string
		start           func(l *lab)
		closest, not    string
		evidenceContain string
	}{
		{"prosody 0.12", func(l *lab) {
			l.prosody("server.test", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid})
		}, "prosody-0.12", "prosody-13", "XEP-0478 stream limits advertised: no"},
		{"prosody 13", func(l *lab) {
			l.prosody("server.test", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid, Backports: true})
		}, "prosody-13", "prosody-0.12", "XEP-0478 stream limits advertised: yes"},
		{"ejabberd 24.12 as Debian ships it", func(l *lab) {
			l.ejabberd("server.test", realserver.EjabberdSettings{StartTLS: "required", Dialback: true, Cert: certs.Valid, Backports: true, Bidi: true})
		}, "ejabberd-24-example", "ejabberd-23-example", "XEP-0440 channel binding advertised after TLS: yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, "")
			tc.start(l)
			r := l.env.Probe(context.Background(), "server.test", "")
			require.NotNil(t, r.Learned)
			assert.Equal(t, tc.closest, r.Learned.Profile, "%+v", r.Learned)
			assert.NotContains(t, r.Learned.AsClose, tc.not)
			assert.Contains(t, r.Learned.Evidence, tc.evidenceContain)
		})
	}
}
