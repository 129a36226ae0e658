package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
)

func TestProfilesListsEveryProfileWithItsSource(t *testing.T) {
	code, out, _ := runCLI("profiles")
	require.Equal(t, exitOK, code)
	for _, p := range policy.Profiles() {
		assert.Contains(t, out, p.Name+"\n")
		assert.Contains(t, out, p.Source)
	}
	assert.Contains(t, out, "partner: -TlsNegotiation Required -SaslNegotiation Required -SupportDialbackNegotiation $true",
		"the Lync gateway's defaults in the cmdlet's words")
}

func TestProfilesShowsOneWithTheKnobsThatDiffer(t *testing.T) {
	code, out, _ := runCLI("profiles", "ejabberd-23-example")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "* eku=client ")
	assert.Contains(t, out, "  required_marker=send ", "a knob as the harness has it is not marked")

	code, out, _ = runCLI("profiles", "jabberd2-2.7", "-o", "json")
	require.Equal(t, exitOK, code)
	var v profileView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, "jabberd2-2.7", v.Name)
	back, err := policy.ParseSpec(v.Spec)
	require.NoError(t, err, "the spec shown is one a spec reads back")
	assert.Equal(t, policy.NotSupported, back.SASL)
}

func TestProfilesRefusesAnUnknownName(t *testing.T) {
	code, _, stderr := runCLI("profiles", "openfire-4")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `unknown profile "openfire-4": accepted values are xmppneg, prosody-0.12`)
	code, _, stderr = runCLI("profiles", "xmppneg", "prosody-0.12")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "give at most one profile name")
}

// A profile in a spec is what the engine plays: an ejabberd 23 receiver
// refuses EXTERNAL from a serverAuth-only certificate and dialback
// takes over.
func TestNegotiateWithAProfile(t *testing.T) {
	code, out, stderr := runCLI("negotiate", "--initiator", "cert=no-client-auth", "--receiver", "profile=ejabberd-23-example")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "tls-dialback")
	code, out, _ = runCLI("negotiate", "--initiator", "cert=no-client-auth,dialback=false", "--receiver", "profile=ejabberd-23-example")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "unsupported certificate purpose")
}
