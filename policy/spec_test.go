package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
)

func TestProfileAppliesFirstWhereverItStands(t *testing.T) {
	for _, spec := range []string{"profile=prosody-0.12,cert=expired", "cert=expired,profile=prosody-0.12"} {
		s, err := ParseSpec(spec)
		require.NoError(t, err, spec)
		want, _ := LookupProfile("prosody-0.12")
		want.Settings.Cert, want.Settings.Profile = certs.Expired, "prosody-0.12"
		assert.Equal(t, want.Settings, s, spec)
	}
}

func TestParseSpecFromKeepsTheBaseUnlessAProfileReplacesIt(t *testing.T) {
	base := DefaultSettings()
	base.SetStrict(false)
	s, err := ParseSpecFrom(base, "tls=Required")
	require.NoError(t, err)
	assert.False(t, s.Strict(), "the base's refusal point stays")
	s, err = ParseSpecFrom(base, "profile=lync2013-gateway")
	require.NoError(t, err)
	assert.True(t, s.Strict(), "the profile replaces the base")
}

func TestEveryProfileRoundTripsThroughItsSpec(t *testing.T) {
	for _, p := range Profiles() {
		back, err := ParseSpec(p.Settings.String())
		require.NoError(t, err, p.Name)
		assert.Equal(t, p.Settings, back, p.Name)
		assert.NotEmpty(t, p.Source, p.Name)
	}
}

func TestUnknownKeysSuggestTheNearestOne(t *testing.T) {
	for spec, hint := range map[string]string{
		"tsl=Required":       `did you mean "tls"?`,
		"profil=xmppneg":     `did you mean "profile"?`,
		"refuse_sever=close": `did you mean "refuse_server"?`,
	} {
		_, err := ParseSpec(spec)
		require.Error(t, err, spec)
		assert.Contains(t, err.Error(), hint, spec)
	}
	assert.Empty(t, Closest("colour", []string{"tls", "sasl"}), "nothing near")
}

func TestKnobsMarkWhatDiffersFromTheHarness(t *testing.T) {
	p, err := LookupProfile("ejabberd-23-example")
	require.NoError(t, err)
	differs := map[string]string{}
	for _, k := range p.Settings.Knobs() {
		if !k.Default {
			differs[k.Key] = k.Value
		}
	}
	assert.Equal(t, "client", differs["eku"])
	assert.Equal(t, "sasl", differs["refuse"], "ejabberd refuses a bad certificate only at SASL")
	assert.NotContains(t, differs, "legacy_streams")
	for _, k := range DefaultSettings().Knobs() {
		assert.True(t, k.Default, k.Key)
	}
}

// The harness's own behaviour is the zero Behaviour: a spec starts from
// it, so DefaultSettings differs from it in no knob, and every knob's
// first value (its zero value) is the harness's.
func TestTheZeroBehaviourIsTheHarnesss(t *testing.T) {
	def := DefaultSettings()
	assert.Equal(t, Behaviour{}, def.Behaviour)
	assert.Empty(t, def.Behaviour.Differences())
	assert.True(t, def.Strict(), "the harness is strict")
	for _, k := range def.Knobs() {
		assert.Equal(t, KnobValues(k.Key)[0], k.Value, "%s: the harness's value is the first", k.Key)
	}
}

// Every field of Behaviour is a knob of the table, under its JSON name,
// and each knob writes its own field only: a field added without its
// entry in the table fails here.
func TestEveryBehaviourFieldIsAKnob(t *testing.T) {
	typ := reflect.TypeFor[Behaviour]()
	var fields []string
	for i := range typ.NumField() {
		fields = append(fields, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	assert.ElementsMatch(t, fields, KnobKeys(), "the fields of Behaviour, by their JSON names, and the knobs")
	for _, k := range knobs {
		var b Behaviour
		k.set(&b, uint8(len(k.values)-1))
		v := reflect.ValueOf(b)
		for i := range typ.NumField() {
			name := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
			assert.Equal(t, name == k.key, !v.Field(i).IsZero(), "the knob %s and the field %s", k.key, typ.Field(i).Name)
		}
		assert.Contains(t, b.Differences(), k.key+"="+k.values[len(k.values)-1])
	}
}
