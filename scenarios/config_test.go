package scenarios

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
)

// The operators' example suite: endpoints read from real configuration
// files, every negotiation as expected (most as the oracle predicts).
func TestOperatorExamples(t *testing.T) {
	s, err := Load("examples/operators.yaml")
	require.NoError(t, err)
	rep := execute(t, []*Suite{s}, Options{Jobs: 4})
	require.NotEmpty(t, rep.Negotiations)
	for _, n := range rep.Negotiations {
		assert.True(t, n.Pass, "%s: %s", n.Case.ID, n.Why)
	}
}

func TestEndpointFromAConfigurationFile(t *testing.T) {
	s, err := Parse("examples/x.yaml", []byte(`suite: x
scenarios:
  - name: a
    initiator: {config: prosody/prosody-secure-auth.cfg.lua, cert: expired}
    receiver: {domain: b.test}
    expect: predicted
`))
	require.NoError(t, err)
	got := s.Cases[0].Initiator
	assert.Equal(t, "example.org", got.Domain, "the host is the domain unless one is given")
	want, err := policy.ParseSpec("profile=prosody-0.12-secure,cert=expired")
	require.NoError(t, err)
	want.Profile = ""
	assert.Equal(t, want, got.Settings)

	for yaml, msg := range map[string]string{
		"{config: prosody/prosody-default.cfg.lua, profile: xmppneg}": "profile and config both",
		"{config: prosody/nothere.cfg.lua}":                           "no such file",
		"{config: ejabberd/ejabberd-typo.yml}":                        "ejabberd would refuse this configuration: Unknown option",
		"{config: prosody/prosody-include.cfg.lua}":                   "name one as FILE#HOST",
		"{config: prosody/prosody-default.cfg.lua#elsewhere.example}": "has no host",
	} {
		_, err := Parse("examples/x.yaml", []byte("suite: x\nscenarios:\n  - {name: a, initiator: "+yaml+", receiver: {domain: b.test}, expect: fail}\n"))
		assert.ErrorContains(t, err, msg, yaml)
		assert.ErrorContains(t, err, "examples/x.yaml:3:", yaml)
	}
}
