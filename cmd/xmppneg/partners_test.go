package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const examples = "../../scenarios/examples/"

// The partners example of the README and docs/partners.md says what this
// run shows.
func TestPartnersExampleFromTheREADME(t *testing.T) {
	t.Parallel()
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
	assert.Equal(t, exitFail, code, "only gtalk is declared, and it works; the others are unknown, which fails the list")
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

// One rule for the exit code, JUnit and the JSON summary: any partner
// that FAILS, is unreachable or unknown fails the list. Six unknown
// partners used to exit 0 while JUnit said failures="6".
func TestPartnersExitCodeJUnitAndJSONAgree(t *testing.T) {
	t.Parallel()
	_, out, _ := runCLI("partners", "--help")
	assert.Contains(t, out, "Exit 0 when every partner works (or works with a weaker method), 1 when any FAILS, is unreachable or unknown")
	for _, tc := range []struct {
		name string
		args []string
		code int
		fail int
	}{
		{"six unknown", nil, exitFail, 6},
		{"one works, one fails", []string{"--profiles", examples + "partners-servers.yaml", "--gateway", "cert=no-client-auth"}, exitFail, 1},
		{"one that works", []string{"--profiles", examples + "partners-servers.yaml"}, exitOK, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each list's three runs mostly wait on their negotiations
			// Small lists: the example's whole list, with its fixes, is
			// TestWritersSayTheSame's (scenarios/partners).
			const gtalk = "New-CsXmppAllowedPartner -Identity gtalk.example -TlsNegotiation NotSupported -SaslNegotiation NotSupported -SupportDialbackNegotiation $true\n"
			list := examples + "partners.ps1"
			switch tc.name {
			case "one that works":
				list = writeFile(t, "one.ps1", gtalk)
			case "one works, one fails":
				list = writeFile(t, "two.ps1", gtalk+"New-CsXmppAllowedPartner -Identity jabberd2.example\n")
			}
			t.Run("text", func(t *testing.T) {
				t.Parallel()
				code, _, stderr := runCLI(append([]string{"partners", list}, tc.args...)...)
				assert.Equal(t, tc.code, code, stderr)
			})
			t.Run("junit", func(t *testing.T) {
				t.Parallel()
				code, out, _ := runCLI(append([]string{"partners", list, "-o", "junit"}, tc.args...)...)
				assert.Equal(t, tc.code, code)
				var doc struct {
					Tests    int `xml:"tests,attr"`
					Failures int `xml:"failures,attr"`
				}
				require.NoError(t, xml.Unmarshal([]byte(out), &doc))
				assert.Equal(t, tc.fail, doc.Failures)
			})
			t.Run("json", func(t *testing.T) {
				t.Parallel()
				code, out, _ := runCLI(append([]string{"partners", list, "-o", "json"}, tc.args...)...)
				assert.Equal(t, tc.code, code)
				var rep struct {
					Summary struct {
						OK      bool `json:"ok"`
						Failing int  `json:"failing"`
					} `json:"summary"`
				}
				require.NoError(t, json.Unmarshal([]byte(out), &rep))
				assert.Equal(t, tc.fail, rep.Summary.Failing)
				assert.Equal(t, tc.code == exitOK, rep.Summary.OK)
			})
		})
	}
}

// Every negotiation the report shows has its full transcript: both
// connections, inside TLS included, and the HTML links to it. -v prints
// them.
func TestPartnersTranscriptsAreThere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, stderr := runCLI("partners", examples+"partners.ps1", "--profiles", examples+"partners-servers.yaml",
		"--gateway", "cert=no-client-auth", "-o", "html", "--out", dir)
	assert.Equal(t, exitFail, code, stderr)
	assert.Regexp(t, `wrote \S+partners\.html and \d+ transcripts in `, out)
	// jabberd2's fix is TLS Dialback: its transcript has the verify
	// connection, and the XML that travelled inside TLS.
	fix, err := os.ReadFile(filepath.Join(dir, "transcripts", "jabberd2.example__fix__gateway-initiates.txt"))
	require.NoError(t, err)
	text := string(fix)
	assert.Contains(t, text, "<stream:stream")
	assert.Regexp(t, `(?m)^ +[\d.]+ms main +TLS `, text, "inside TLS on the main connection")
	assert.Regexp(t, `(?m)^ +[\d.]+ms verify `, text, "the verify connection")
	assert.Contains(t, text, "<db:verify")
	assert.Greater(t, strings.Count(text, "\n"), 20, "the whole negotiation, not a header")
	page, err := os.ReadFile(filepath.Join(dir, "partners.html"))
	require.NoError(t, err)
	links := regexp.MustCompile(`href="(transcripts/[^"]+)"`).FindAllStringSubmatch(string(page), -1)
	require.NotEmpty(t, links)
	for _, l := range links {
		_, err := os.Stat(filepath.Join(dir, l[1]))
		assert.NoError(t, err, l[1])
	}
	// -v promises transcripts and prints them.
	code, out, _ = runCLI("partners", examples+"partners.ps1", "--profiles", examples+"partners-servers.yaml", "-v")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "<stream:stream")
	assert.Contains(t, out, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
}

// Your own server's partners follow the same rules: a partner nobody
// declared or probed gets no line of the file (it used to get the line
// that worked with the most candidate servers), and fails the list.
func TestOwnServerNoLineOnGuesswork(t *testing.T) {
	t.Parallel()
	list := writeFile(t, "domains.txt", "unknown.example\n")
	code, out, stderr := runCLI("partners", list, "--gateway", "config="+examples+"prosody/prosody-no-dialback.cfg.lua#example.org", "-o", "json")
	assert.Equal(t, exitFail, code, stderr)
	var rep struct {
		Partners []struct {
			Status   string `json:"status"`
			Fix      any    `json:"fix"`
			Blockers []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"blockers"`
		} `json:"partners"`
		Summary struct {
			OK      bool `json:"ok"`
			Failing int  `json:"failing"`
		} `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Partners, 1)
	assert.Equal(t, "unknown", rep.Partners[0].Status)
	assert.Nil(t, rep.Partners[0].Fix)
	require.NotEmpty(t, rep.Partners[0].Blockers)
	assert.Equal(t, "unknown-partner", rep.Partners[0].Blockers[0].Code)
	assert.Contains(t, rep.Partners[0].Blockers[0].Message, "--probe")
	assert.False(t, rep.Summary.OK)
	assert.Equal(t, 1, rep.Summary.Failing)
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
