package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
)

// roundTrip is s as ParseSpec reads back what String prints: the
// secret is left out of the text, and the profile a spec started from
// is not a setting.
func roundTrip(t testing.TB, s Settings) Settings {
	t.Helper()
	back, err := ParseSpec(s.String())
	require.NoError(t, err, "%s does not parse back", s)
	return back
}

func comparable(s Settings) Settings {
	s.Secret, s.Profile = "", ""
	return s
}

// Printing then parsing gives the same settings, for every shipped
// profile with every value of every knob, and every pair of refusal
// points: ejabberd without dialback (refuse=sasl with
// refuse_server=close) printed without its refuse=sasl and read back as
// a strict receiver.
func TestSettingsRoundTripThroughTheirSpec(t *testing.T) {
	ej := EjabberdSettings(Required, false)
	assert.Equal(t, comparable(ej), roundTrip(t, ej), "ejabberd without dialback: %s", ej)

	for _, p := range Profiles() {
		check := func(s Settings, what string) {
			t.Helper()
			assert.Equal(t, comparable(s), roundTrip(t, s), "%s with %s: %s", p.Name, what, s)
		}
		check(p.Settings, "its own settings")
		for _, k := range knobs {
			for i := range k.values {
				s := p.Settings
				k.set(&s.Behaviour, uint8(i))
				if lo, hi := s.TLSRange(); lo > hi {
					continue // no such end: ParseSpec refuses it
				}
				check(s, k.key+"="+k.values[i])
			}
		}
		for _, r := range KnobValues("refuse") {
			for _, rs := range KnobValues("refuse_server") {
				s := p.Settings
				require.NoError(t, s.Set("refuse", r))
				require.NoError(t, s.Set("refuse_server", rs))
				check(s, "refuse="+r+",refuse_server="+rs)
			}
		}
		for _, st := range certs.States {
			s := p.Settings
			s.Cert = st
			check(s, "cert="+string(st))
		}
	}
}

// FuzzSettingsRoundTrip builds settings from arbitrary bytes, every
// field and knob included, and checks that ParseSpec(s.String()) gives
// s back.
func FuzzSettingsRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 1, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 2, 0, 5, 0, 3, 1, 2, 0, 2, 1, 1, 2, 1, 1, 1, 1, 1, 3, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		next := func(n int) uint8 {
			if len(b) == 0 {
				return 0
			}
			v := b[0]
			b = b[1:]
			return v % uint8(n)
		}
		var s Settings
		s.TLS, s.SASL, s.Dialback = Level(next(3)), Level(next(3)), next(2) == 1
		s.Cert = certs.States[next(len(certs.States))]
		for _, k := range knobs {
			k.set(&s.Behaviour, next(len(k.values)))
		}
		if lo, hi := s.TLSRange(); lo > hi {
			return
		}
		back, err := ParseSpec(s.String())
		if err != nil {
			t.Fatalf("%+v printed as %q, which does not parse: %v", s, s.String(), err)
		}
		if back != s {
			t.Fatalf("%q parsed back as %q", s.String(), back.String())
		}
	})
}
