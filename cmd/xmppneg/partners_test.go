package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const examples = "../../scenarios/examples/"

func TestPartnersExampleFromTheREADME(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runCLI("partners", examples+"partners.ps1", "--profiles", examples+"partners-servers.yaml",
		"--gateway", "cert=no-client-auth", "--out", dir)
	assert.Equal(t, exitFail, code, "some partners fail: %s", stderr)
	assert.Contains(t, out, "jabberd2.example  M1")
	assert.Contains(t, out, "Set-CsXmppAllowedPartner -Identity jabberd2.example -SaslNegotiation Optional")
	assert.Contains(t, out, "transcripts/prosody.example__gateway-initiates.txt")
	transcript, err := os.ReadFile(filepath.Join(dir, "transcripts", "prosody.example__gateway-initiates.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(transcript), "certificate is self-signed")
	_, err = os.Stat(filepath.Join(dir, "partners.txt"))
	assert.NoError(t, err)

	code, out, _ = runCLI("partners", examples+"partners.json", "--partner", "gtalk.example=gtalk-legacy", "-o", "json")
	assert.Equal(t, exitOK, code, "only gtalk is declared, and it works; the others are unknown")
	var rep struct {
		Partners []struct {
			Domain string `json:"domain"`
			Status string `json:"status"`
		} `json:"partners"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Partners, 6)
	assert.Equal(t, "works", rep.Partners[0].Status)
	assert.Equal(t, "unknown", rep.Partners[1].Status)
}

func TestPartnersBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ps1")
	require.NoError(t, os.WriteFile(bad, []byte("New-CsXmppAllowedPartner -Identity a.example -TlsNegotiation Sometimes\n"), 0o644))
	decl := filepath.Join(dir, "servers.yaml")
	require.NoError(t, os.WriteFile(decl, []byte("a.example: prosody-0.13\n"), 0o644))
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"partners"}, "give one partner list file"},
		{[]string{"partners", filepath.Join(dir, "none.ps1")}, "no such file"},
		{[]string{"partners", bad}, `bad.ps1:1: partner "a.example": TlsNegotiation: invalid value "Sometimes"`},
		{[]string{"partners", examples + "partners.ps1", "--profiles", decl}, `--profiles: servers.yaml:1: a.example: unknown profile "prosody-0.13"`},
		{[]string{"partners", examples + "partners.ps1", "--partner", "gtalk.example"}, `--partner "gtalk.example" is not DOMAIN=PROFILE or DOMAIN=SPEC`},
		{[]string{"partners", examples + "partners.ps1", "--gateway", "cert=shiny"}, `--gateway: cert: invalid certificate state "shiny"`},
		{[]string{"partners", examples + "partners.ps1", "--lang", "fr"}, `--lang "fr": accepted values are en, ko`},
		{[]string{"partners", examples + "partners.ps1", "--out", "/dev/null/x"}, "--out /dev/null/x"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}
