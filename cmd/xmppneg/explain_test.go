package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
)

const debianProsody = "../../policy/serverconf/testdata/debian/prosody/prosody.cfg.lua"
const exampleDir = "../../scenarios/examples/"

func TestExplainJSON(t *testing.T) {
	code, out, errs := runCLI("explain", debianProsody, "-o", "json")
	require.Equal(t, exitOK, code, errs)
	var doc struct {
		File   string   `json:"file"`
		Server string   `json:"server"`
		Files  []string `json:"files"`
		Hosts  []struct {
			Host        string            `json:"host"`
			Settings    string            `json:"settings"`
			Profile     string            `json:"profile"`
			Differences []string          `json:"differences"`
			Sources     map[string]string `json:"sources"`
			NotModelled []string          `json:"not_modelled"`
			Warnings    []struct{ Code, Source, Message string }
		} `json:"hosts"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "prosody 0.12", doc.Server)
	assert.Len(t, doc.Files, 2, "the main file and the one conf.d/*.cfg.lua includes")
	require.Len(t, doc.Hosts, 1)
	h := doc.Hosts[0]
	assert.Equal(t, "localhost", h.Host)
	assert.Equal(t, "prosody-0.12-secure", h.Profile)
	assert.Equal(t, []string{"cert=missing (profile: valid)"}, h.Differences)
	assert.Equal(t, debianProsody+":110", h.Sources["refuse"])
	// The settings are a spec negotiate accepts, to the same settings.
	s, err := policy.ParseSpec(h.Settings)
	require.NoError(t, err)
	assert.Equal(t, h.Settings, s.String())
	var codes []string
	for _, w := range h.Warnings {
		codes = append(codes, w.Code)
	}
	assert.Contains(t, codes, "no-certificate")
	assert.NotEmpty(t, h.NotModelled)
}

func TestExplainText(t *testing.T) {
	code, out, _ := runCLI("explain", exampleDir+"prosody/prosody-host-secure-auth.cfg.lua")
	require.Equal(t, exitOK, code)
	for _, want := range []string{"example.org (VirtualHost)", "closest profile:  prosody-0.12 (exactly)",
		"does not change authentication: mod_s2s reads it in the global section", "try it: xmppneg negotiate --initiator 'config="} {
		assert.Contains(t, out, want)
	}
}

func TestExplainRefusedFile(t *testing.T) {
	code, out, _ := runCLI("explain", exampleDir+"ejabberd/ejabberd-typo.yml")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "ejabberd-typo.yml:7: ejabberd would refuse to start with this file:\n  Unknown option: s2s_use_startls. Did you mean s2s_use_starttls?")
	code, out, _ = runCLI("explain", exampleDir+"prosody/prosody-refused.cfg.lua", "-o", "json")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, `"refused": {`)

	code, _, errs := runCLI("explain", "nothere.cfg.lua")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "nothere.cfg.lua")
	code, _, errs = runCLI("explain", exampleDir+"prosody/prosody-default.cfg.lua", "--host", "nothere.example")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "has no host")
}

// config=FILE#HOST wherever a spec is accepted: negotiate here.
func TestNegotiateWithAConfigurationFile(t *testing.T) {
	code, out, errs := runCLI("negotiate", "--initiator", "config="+exampleDir+"prosody/prosody-no-dialback.cfg.lua#example.org,cert=no-client-auth",
		"--initiator-domain", "example.org", "--receiver", "config="+exampleDir+"ejabberd/ejabberd-optional.yml", "--receiver-domain", "example.net")
	assert.Equal(t, exitFail, code, errs)
	assert.Contains(t, out, "unsupported certificate purpose")
	assert.Contains(t, out, "oracle:     as predicted")

	code, _, errs = runCLI("negotiate", "--initiator", "config="+exampleDir+"ejabberd/ejabberd-typo.yml")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "--initiator: config:")
	assert.Contains(t, errs, "Unknown option: s2s_use_startls")
}

func copyFile(t *testing.T, from, to string, edit func(string) string) {
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, []byte(edit(string(b))), 0o644))
}

func TestDiffConfigurations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, new := filepath.Join(dir, "old.cfg.lua"), filepath.Join(dir, "new.cfg.lua")
	copyFile(t, exampleDir+"prosody/prosody-default.cfg.lua", old, func(s string) string { return s })
	copyFile(t, exampleDir+"prosody/prosody-default.cfg.lua", new, func(s string) string {
		return strings.Replace(s, `"dialback"; -- Server Dialback (XEP-0220)`, "", 1)
	})
	code, out, errs := runCLI("diff", "--before", old, "--after", new)
	assert.Equal(t, exitFail, code, errs)
	assert.Contains(t, out, "REGRESSION  example.org  jabberd2-2.7")
	assert.Contains(t, out, "FAIL: 24 negotiations with each version, 2 changed: 2 regressions")

	// Back again: the same two negotiations, improvements, exit 0.
	code, out, _ = runCLI("diff", "--before", new, "--after", old, "-o", "json")
	assert.Equal(t, exitOK, code)
	var doc struct {
		Negotiations []struct {
			Change string                   `json:"change"`
			Before struct{ Outcome string } `json:"before"`
			After  struct{ Outcome string } `json:"after"`
		} `json:"negotiations"`
		Summary struct{ Changed, Regressions, Improvements int }
		OK      bool `json:"ok"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.True(t, doc.OK)
	assert.Equal(t, 2, doc.Summary.Improvements)
	require.Len(t, doc.Negotiations, 2)
	assert.Equal(t, "tls-dialback", doc.Negotiations[0].After.Outcome)

	// The same file: nothing changes.
	code, out, _ = runCLI("diff", "--before", old, "--after", old)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "(no negotiation changes)")

	// JUnit: a failure per regression.
	code, out, _ = runCLI("diff", "--before", old, "--after", new, "-o", "junit")
	assert.Equal(t, exitFail, code)
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	require.NoError(t, xml.Unmarshal([]byte(out), &suite))
	assert.Equal(t, 24, suite.Tests)
	assert.Equal(t, 2, suite.Failures)

	// A new file the server would refuse is the worst regression.
	copyFile(t, exampleDir+"prosody/prosody-refused.cfg.lua", new, func(s string) string { return s })
	code, out, _ = runCLI("diff", "--before", old, "--after", new)
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "prosody would refuse to start with the new file")
}

func TestDiffPartnerLists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	after := filepath.Join(dir, "partners.ps1")
	copyFile(t, exampleDir+"partners.ps1", after, func(s string) string {
		return strings.Replace(s, "-Identity ejabberd.example -TlsNegotiation Required -SaslNegotiation Required -SupportDialbackNegotiation $false",
			"-Identity ejabberd.example -TlsNegotiation Required -SaslNegotiation Optional -SupportDialbackNegotiation $true", 1)
	})
	code, out, errs := runCLI("diff", "--before", exampleDir+"partners.ps1", "--after", after, "--partners", exampleDir+"partners-servers.yaml", "--gateway", "cert=no-client-auth")
	assert.Equal(t, exitOK, code, errs)
	assert.Contains(t, out, "better  ejabberd.example  ejabberd-23-example  ours-initiates  failed at sasl (not-authorized by receiver)  TLS Dialback")
	// And back: the fix undone is a regression.
	code, _, _ = runCLI("diff", "--after", exampleDir+"partners.ps1", "--before", after, "--partners", exampleDir+"partners-servers.yaml", "--gateway", "cert=no-client-auth")
	assert.Equal(t, exitFail, code)

	code, _, errs = runCLI("diff", "--before", exampleDir+"partners.ps1", "--after", exampleDir+"prosody/prosody-default.cfg.lua")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "must both be server configurations or both partner lists")
}

// partners --gateway config=FILE#HOST: the operator's own server; a fix
// is a line of the file, and applying it makes the partnership work.
func TestPartnersOfOwnServer(t *testing.T) {
	t.Parallel()
	// --timeout 1s: ejabberd 23 initiating is silent after SASL (a known
	// behaviour of its profile), and the default 5 s would be waited out.
	dir := t.TempDir()
	list := filepath.Join(dir, "domains.txt")
	require.NoError(t, os.WriteFile(list, []byte("jabberd2.example\nejabberd.example\n"), 0o644))
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	copyFile(t, exampleDir+"prosody/prosody-no-dialback.cfg.lua", cfg, func(s string) string { return s })
	code, out, errs := runCLI("partners", list, "--profiles", exampleDir+"partners-servers.yaml", "--gateway", "config="+cfg+"#example.org,cert=no-client-auth", "-o", "json", "--timeout", "1s")
	assert.Equal(t, exitFail, code, errs)
	var rep struct {
		Partners []struct {
			Domain string `json:"domain"`
			Status string `json:"status"`
			Fix    *struct {
				Where, Line, Knobs string
			} `json:"fix"`
		} `json:"partners"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Partners, 2)
	for _, p := range rep.Partners {
		assert.Equal(t, "fails", p.Status, p.Domain)
		require.NotNil(t, p.Fix, p.Domain)
		assert.Equal(t, "config", p.Fix.Where)
		assert.Equal(t, "dialback=true", p.Fix.Knobs)
		assert.Contains(t, p.Fix.Line, "prosody.cfg.lua:7: remove the line \"dialback\"; (from modules_disabled)")
	}
	// The fix applied: both partners work.
	copyFile(t, cfg, cfg, func(s string) string { return strings.Replace(s, "\t\"dialback\";\n", "", 1) })
	code, out, errs = runCLI("partners", list, "--profiles", exampleDir+"partners-servers.yaml", "--gateway", "config="+cfg+"#example.org,cert=no-client-auth", "--timeout", "1s")
	assert.Equal(t, exitOK, code, errs+out)
	assert.Contains(t, out, "Summary: 2 works")
}
