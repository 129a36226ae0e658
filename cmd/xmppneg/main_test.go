package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
	"xmppneg/scenarios"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckAllCombinationsJSON(t *testing.T) {
	for _, row := range policy.Full.Rows {
		p := row.Policy
		t.Run(row.ID, func(t *testing.T) {
			code, out, _ := runCLI("check", "--tls", p.TLS.String(), "--sasl", p.SASL.String(), "--dialback", map[bool]string{true: "$true", false: "$false"}[p.Dialback], "-o", "json")
			var got struct {
				Row      string           `json:"row"`
				TLS      string           `json:"tls"`
				SASL     string           `json:"sasl"`
				Dialback bool             `json:"dialback"`
				Valid    bool             `json:"valid"`
				Methods  []string         `json:"methods"`
				Warnings []policy.Finding `json:"warnings"`
				Errors   []policy.Finding `json:"errors"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &got), out)
			assert.Equal(t, row.ID, got.Row)
			assert.Equal(t, p.TLS.String(), got.TLS)
			assert.Equal(t, p.SASL.String(), got.SASL)
			assert.Equal(t, p.Dialback, got.Dialback)
			assert.Equal(t, row.Valid, got.Valid)
			assert.Len(t, got.Methods, len(row.Methods))
			for i, m := range row.Methods {
				assert.Equal(t, m.String(), got.Methods[i])
			}
			assert.Len(t, got.Warnings, len(row.Warnings))
			assert.Len(t, got.Errors, len(row.Errors))
			want := exitOK
			if !row.Valid {
				want = exitFail
			}
			assert.Equal(t, want, code)
		})
	}
}

func TestCheckText(t *testing.T) {
	code, out, _ := runCLI("check", "--tls", "required", "--sasl", "필수", "--dialback", "True")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "M1 of the full matrix")
	assert.Contains(t, out, "warning: [dialback-disabled]")
	assert.Contains(t, out, "SASL over TLS")
	assert.NotContains(t, out, "\x1b[", "no colour when not on a terminal")

	code, out, _ = runCLI("check", "--tls", "Not supported", "--sasl", "NotSupported", "--dialback", "false")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "INVALID")
	assert.Contains(t, out, "[sasl-or-dialback-required]")
}

// check speaks the partner cmdlet's words too: its flag names, or one
// New-CsXmppAllowedPartner line, with the documented defaults for what
// the line leaves out.
func TestCheckInTheCmdletsWords(t *testing.T) {
	code, out, _ := runCLI("check", "--TlsNegotiation", "Required", "--SaslNegotiation", "Optional", "--SupportDialbackNegotiation", "$true")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "M7 of the full matrix")

	// Unquoted, as typed after the command: its -Parameters are not ours.
	code, out, _ = runCLI("check", "-o", "json", "New-CsXmppAllowedPartner", "-Identity", "jabber.example", "-SaslNegotiation", "Optional")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, `"row": "M7"`, "TLS and dialback take the defaults Required and True")

	code, out, _ = runCLI("check", "New-CsXmppAllowedPartner -Identity x.example -TlsNegotiation NotSupported -SaslNegotiation Required -SupportDialbackNegotiation $false")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "INVALID")

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"check", "New-CsXmppAllowedPartner", "-Tls", "Maybe"}, `-TlsNegotiation: invalid value "Maybe": accepted values are Required, Optional, NotSupported`},
		{[]string{"check", "--tls", "Required", "New-CsXmppAllowedPartner"}, "either as flags or as a New-CsXmppAllowedPartner line"},
		{[]string{"check", "--tls", "Required", "--TlsNegotiation", "Optional", "--sasl", "Optional", "--dialback", "true"}, "--tls Required and --TlsNegotiation Optional disagree"},
		{[]string{"check", "Set-CsXmppAllowedPartner", "-Identity", "x.example", "-Tls", "Optional"}, "a Set-CsXmppAllowedPartner line changes an entry it does not show"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}

// A line pasted into bash loses $true: the shell expands it to
// nothing. check names the parameter left without a value and says why.
func TestCheckSaysWhichParameterLostItsDollarValue(t *testing.T) {
	for _, args := range [][]string{
		// New-CsXmppAllowedPartner ... -SupportDialbackNegotiation $true, as bash passes it
		{"check", "New-CsXmppAllowedPartner", "-Identity", "a.example", "-TlsNegotiation", "Required", "-SupportDialbackNegotiation"},
		{"check", "New-CsXmppAllowedPartner", "-Identity", "a.example", "-SupportDialbackNegotiation", "-TlsNegotiation", "Required"},
		{"check", "New-CsXmppAllowedPartner -Identity a.example -SupportDialbackNegotiation"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, exitUsage, code, args)
		assert.Contains(t, stderr, "-SupportDialbackNegotiation has no value: in a POSIX shell (bash, zsh, sh) $true and $false are shell variables that expand to nothing; quote them ('$true', '$false')", args)
	}
	for name, args := range map[string][]string{
		"dialback":                   {"check", "--tls", "Required", "--sasl", "Optional", "--dialback"},
		"SupportDialbackNegotiation": {"check", "--SupportDialbackNegotiation", "--TlsNegotiation", "Required", "--SaslNegotiation", "Optional"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, exitUsage, code, args)
		assert.Contains(t, stderr, "--"+name+" has no value", args)
		assert.Contains(t, stderr, "$true and $false are shell variables that expand to nothing", args)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"check", "--tls", "Maybe", "--sasl", "Optional", "--dialback", "true"}, `--tls: invalid level "Maybe"`},
		{[]string{"check", "--tls", "Optional", "--sasl", "Optional", "--dialback", "yes"}, `--dialback: invalid boolean "yes"`},
		{[]string{"check", "--tls", "Optional", "--sasl", "Optional"}, "--dialback (or --SupportDialbackNegotiation) is required"},
		{[]string{"check", "-o", "xml", "--tls", "Optional"}, `unknown format "xml"`},
		{[]string{"matrix", "extra"}, `unexpected argument "extra"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{nil, "Usage: xmppneg COMMAND"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}

func TestHelpEveryCommand(t *testing.T) {
	for _, c := range commands {
		code, out, _ := runCLI(c.name, "--help")
		assert.Equal(t, exitOK, code, c.name)
		assert.Contains(t, out, "Usage: xmppneg "+c.name, c.name)
		assert.Contains(t, out, "Example:", c.name)
	}
	code, out, _ := runCLI("help")
	assert.Equal(t, exitOK, code)
	for _, c := range commands {
		assert.Contains(t, out, c.name)
	}
}

func TestMatrixFormats(t *testing.T) {
	code, out, _ := runCLI("matrix")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "M18")
	assert.Contains(t, out, "C2/M7")

	code, out, _ = runCLI("matrix", "-o", "markdown", "--korean")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "| M7 | Required | Optional | true | SASL over TLS, TLS Dialback |")
	assert.Contains(t, out, "유효하지 않은 구성")

	code, out, _ = runCLI("matrix", "-o", "json")
	assert.Equal(t, exitOK, code)
	var got struct {
		Tables          []policy.Table         `json:"tables"`
		Inconsistencies []policy.Inconsistency `json:"inconsistencies"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Tables, 2)
	assert.Len(t, got.Tables[0].Rows, 4)
	assert.Len(t, got.Tables[1].Rows, 18)
	require.Len(t, got.Inconsistencies, 1)
	assert.Equal(t, "C2", got.Inconsistencies[0].Rows[0])
	assert.True(t, strings.HasPrefix(got.Tables[1].Rows[6].ID, "M7"))
}

// Help shows flags as the usage lines and docs/cli.md write them:
// --name, and -o, -v, -j for the one-letter ones.
func TestHelpShowsFlagsAsTheUsageLinesWriteThem(t *testing.T) {
	for _, c := range commands {
		_, out, _ := runCLI(c.name, "--help")
		flags := regexp.MustCompile(`(?m)^  (-+)(\w[\w-]*)`).FindAllStringSubmatch(out, -1)
		require.NotEmpty(t, flags, c.name)
		for _, f := range flags {
			want := "--"
			if len(f[2]) == 1 {
				want = "-"
			}
			assert.Equal(t, want, f[1], "%s --help:\n%s", c.name, out)
		}
	}
	_, out, _ := runCLI("run", "--help")
	assert.Contains(t, out, "  --run REGEXP\n")
	// The formats are the suite report's writers (scenarios.Writers), in
	// the order of report.Formats, the text first as the default.
	assert.Contains(t, out, "  -o FORMAT\n      output format: "+strings.Join(scenarios.Writers.Names(), ", ")+" (default table)")
	assert.Contains(t, out, "  -v\n")
	assert.Contains(t, out, "  -j N\n")
	assert.NotContains(t, out, "  --o ")
}

// Empty lists are [] in JSON, never null.
func TestCheckAndMatrixJSONHaveNoNull(t *testing.T) {
	_, out, _ := runCLI("check", "--tls", "Required", "--sasl", "Optional", "--dialback", "true", "-o", "json")
	assert.NotContains(t, out, "null")
	assert.Contains(t, out, `"warnings": []`)
	_, out, _ = runCLI("matrix", "-o", "json")
	assert.NotContains(t, out, "null")
}
