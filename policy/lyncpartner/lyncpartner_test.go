package lyncpartner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
)

// The example inventory is one list in the four shapes the management
// shell writes; read in each, it is the same list.
func TestFourFormatsOfOneListAreTheSame(t *testing.T) {
	var want []byte
	for _, name := range []string{"partners.ps1", "partners.txt", "partners.csv", "partners.json"} {
		path := filepath.Join("..", "..", "scenarios", "examples", name)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		entries, notes, err := Parse(name, data)
		require.NoError(t, err, name)
		require.Len(t, entries, 6, name)
		got, err := json.Marshal(entries)
		require.NoError(t, err)
		if want == nil {
			want = got
			continue
		}
		assert.JSONEq(t, string(want), string(got), name)
		if filepath.Ext(name) == ".csv" || filepath.Ext(name) == ".json" {
			require.NotEmpty(t, notes, "%s: the Element property is noted as ignored", name)
			assert.Contains(t, notes[len(notes)-1].Text, `property "Element" ignored in 6 entries`, name)
		}
	}
	var entries []Entry
	require.NoError(t, json.Unmarshal(want, &entries))
	assert.Equal(t, policy.Policy{TLS: policy.Required, SASL: policy.Required, Dialback: true}, entries[1].Policy,
		"a New- line without settings gets the documented defaults")
	assert.Equal(t, PublicUnverified, entries[1].PartnerType)
}

func TestCmdletLines(t *testing.T) {
	entries, notes, err := Parse("p.ps1", []byte(strings.Join([]string{
		`New-CsXmppAllowedPartner a.example -Tls Optional -SaslNegotiation:NotSupported -SupportDialbackNegotiation:$false # comment`,
		`New-CsXmppAllowedPartner -Identity 'b.example' -AdditionalDomains "c.example", "d.example" ` + "`",
		`    -PartnerType Federated -WhatIf`,
		`Set-CsXmppAllowedPartner -Identity a.example -SupportDialbackNegotiation $true`,
	}, "\n")))
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, policy.Policy{TLS: policy.Optional, SASL: policy.NotSupported, Dialback: true}, entries[0].Policy, "Set- changes what New- made")
	assert.Equal(t, "p.ps1:1", entries[0].Source)
	assert.Equal(t, []string{"c.example", "d.example"}, entries[1].AdditionalDomains)
	assert.Equal(t, Federated, entries[1].PartnerType)
	require.Len(t, notes, 1)
	assert.Contains(t, notes[0].String(), "p.ps1:2: -WhatIf")
}

func TestBadInputNamesFileLineRecordAndProperty(t *testing.T) {
	for _, tc := range []struct{ name, data, err string }{
		{"bad level, format-list", "Identity : a.example\nTlsNegotiation : Sometimes\n",
			`p:2: partner "a.example": TlsNegotiation: invalid value "Sometimes": accepted values are Required, Optional, NotSupported`},
		{"bad bool, cmdlet", "New-CsXmppAllowedPartner -Identity a.example -SupportDialbackNegotiation maybe\n",
			`p:1: partner "a.example": SupportDialbackNegotiation: invalid value "maybe": accepted values are True, False`},
		{"enum as number, json", "[\n {\"Identity\": \"a.example\",\n  \"TlsNegotiation\": 0}\n]",
			`p:3: TlsNegotiation: is the number 0: ConvertTo-Json wrote the enum's number, not its name`},
		{"bad csv row", "\"Identity\",\"TlsNegotiation\"\n\"a.example\",\"Required\",\"x\"\n",
			`p:2: this row has a different number of values than the header`},
		{"not a domain", "New-CsXmppAllowedPartner -Identity 'a b'\n", `p:1: partner "a b": Identity: "a b" is not a domain name`},
		{"unknown parameter", "New-CsXmppAllowedPartner -Identity a.example -TlsNegociation Required\n",
			`p:1: unknown parameter -TlsNegociation; did you mean -TlsNegotiation?`},
		{"ambiguous prefix", "New-CsXmppAllowedPartner -Identity a.example -S Required\n", `p:1: -S is ambiguous`},
		{"set before new", "Set-CsXmppAllowedPartner -Identity a.example -TlsNegotiation Optional\n",
			`p:1: partner "a.example": Set-CsXmppAllowedPartner for a partner no New-CsXmppAllowedPartner line above creates`},
		{"twice", "Identity : a.example\n\nIdentity : A.example\n", `partner "A.example": listed twice (p:1 and p:3)`},
		{"no identity", "TlsNegotiation : Required\n", `p:1: an entry without Identity or Domain`},
		{"garbage", "hello\n", `p: not a partner list`},
		{"broken json", "[{\"Identity\": \"a.example\",", `p:1: not valid JSON`},
		{"empty", "  \n", `p: empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse("p", []byte(tc.data))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestUnknownPropertiesAreNotedAndDefaultsSaid(t *testing.T) {
	entries, notes, err := Parse("p.txt", []byte("Identity : a.example\nColour : blue\n"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	var texts []string
	for _, n := range notes {
		texts = append(texts, n.String())
	}
	all := strings.Join(texts, "\n")
	assert.Contains(t, all, `p.txt:2: property "Colour" ignored (not a partner setting)`)
	assert.Contains(t, all, `p.txt:1: partner "a.example" has no TlsNegotiation: the documented default Required is used`)
}

func TestCmdletNamesOnlyWhatChanges(t *testing.T) {
	from := policy.Policy{TLS: policy.Required, SASL: policy.Required, Dialback: true}
	to := policy.Policy{TLS: policy.Required, SASL: policy.Optional, Dialback: true}
	assert.Equal(t, "Set-CsXmppAllowedPartner -Identity a.example -SaslNegotiation Optional", Cmdlet("a.example", from, to))
	e := Default("a.example")
	e.Description = "it's ours"
	line := NewCmdlet(e)
	back, _, err := Parse("x", []byte(line))
	require.NoError(t, err, line)
	assert.Equal(t, "it's ours", back[0].Description)
}

// An identity that is not a domain is refused where the list is read,
// in every format: it is never a real partner, and it would be printed
// in a command an administrator pastes.
func TestIdentityThatIsNotADomainIsRefused(t *testing.T) {
	for _, id := range []string{"ps1.example’;Restart-Computer -Force;#", "ps1.example';Restart-Computer;#", "a.example\x1b[2J", "a`b.example", "../evil"} {
		for name, list := range map[string]string{
			"format-list": "Identity : " + id + "\nDomain : a.example\nTlsNegotiation : Optional\n",
			"json":        `[{"Identity": ` + jsonString(id) + `, "Domain": "a.example"}]`,
		} {
			_, _, err := Parse("p", []byte(list))
			require.Error(t, err, "%s: %q", name, id)
			assert.Contains(t, err.Error(), "Identity", name)
			assert.Contains(t, err.Error(), "is not a domain name", name)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Whatever is printed anyway stays one PowerShell string: every quote
// character PowerShell ends a single-quoted string at (' ‘ ’ ‚ ‛) is
// doubled, a newline or another control character is shown as an
// escape, a backtick stays inside the quotes.
func TestPrintedValuesCannotEndTheirQuotes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.example", "a.example"},
		{"x';Restart-Computer -Force;#", "'x'';Restart-Computer -Force;#'"},
		{"x‘;Restart-Computer;#", "'x‘‘;Restart-Computer;#'"},
		{"x’;Restart-Computer;#", "'x’’;Restart-Computer;#'"},
		{"x‚;Restart-Computer;#", "'x‚‚;Restart-Computer;#'"},
		{"x‛;Restart-Computer;#", "'x‛‛;Restart-Computer;#'"},
		{"x\nRestart-Computer", `'x\nRestart-Computer'`},
		{"x\r\nRestart-Computer", `'x\r\nRestart-Computer'`},
		{"x`;Restart-Computer", "'x`;Restart-Computer'"},
		{"x\u2028Restart-Computer", `'x\u2028Restart-Computer'`},
	} {
		got := Cmdlet(tc.in, policy.Policy{}, policy.Policy{TLS: policy.Optional})
		assert.Equal(t, "Set-CsXmppAllowedPartner -Identity "+tc.want+" -TlsNegotiation Optional", got, "%q", tc.in)
		assert.NotContains(t, got, "\n")
		// The PowerShell reading: inside the quotes, every quote
		// character comes doubled.
		inner := strings.TrimSuffix(strings.TrimPrefix(tc.want, "'"), "'")
		for _, q := range psQuotes {
			assert.Zero(t, strings.Count(strings.ReplaceAll(inner, string(q)+string(q), ""), string(q)), "a lone %q in %s", q, tc.want)
		}
	}
	e := Default("a.example")
	e.Description = "it’s ours;\nRestart-Computer"
	assert.Contains(t, NewCmdlet(e), `-Description 'it’’s ours;\nRestart-Computer'`)
}
