package lyncpartner

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigFormatList is a Format-List export of n partners whose long values
// wrap onto indented lines, as a large gateway's list does.
func bigFormatList(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Identity                   : p%d.example.com\n", i)
		fmt.Fprintf(&b, "AdditionalDomains          : {a%d.example.com, b%d.example.com,\n                             c%d.example.com}\n", i, i, i)
		b.WriteString("PartnerType                : PublicVerified\nTlsNegotiation             : Optional\nSaslNegotiation            : NotSupported\n")
		b.WriteString("SupportDialbackNegotiation : True\nEnableKeepAlive            : False\nProxyFqdn                  :\nConnectionLimit            : 0\n")
		fmt.Fprintf(&b, "Description                : partner number %d, a description long enough that Format-List\n                             wraps it onto the next line and then\n                             the one after\n\n", i)
	}
	return []byte(b.String())
}

// bigCmdlets is n New-CsXmppAllowedPartner lines, each continued with
// backticks.
func bigCmdlets(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "New-CsXmppAllowedPartner -Identity p%d.example.com `\n    -TlsNegotiation Optional `\n    -SaslNegotiation NotSupported -SupportDialbackNegotiation $true `\n    -Description 'partner %d'\n", i, i)
	}
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	for _, f := range []struct {
		name string
		gen  func(int) []byte
	}{{"format-list", bigFormatList}, {"cmdlets", bigCmdlets}} {
		for _, n := range []int{1000, 4000} {
			data := f.gen(n)
			b.Run(fmt.Sprintf("%s/%d", f.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, _, err := Parse("p", data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// allocated is the bytes parsing data allocates.
func allocated(t *testing.T, data []byte) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := Parse("p", data)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	return after.TotalAlloc - before.TotalAlloc
}

// Every reader is linear in its input: a value wrapped over many lines,
// a command continued over many lines, a long list of domains. Parsing
// 8 times the input may allocate about 8 times as much, not 64 times
// (a quadratic reader took 35 s for 16 MB).
func TestReadersAreLinear(t *testing.T) {
	for name, gen := range map[string]func(n int) string{
		"Format-List wrapped value": func(n int) string {
			return "Identity : a.example\nDescription : start\n" + strings.Repeat("    more words of the description\n", n)
		},
		"backtick continuation": func(n int) string {
			return "New-CsXmppAllowedPartner -Identity a.example -Description 'x" + strings.Repeat(" `\n word", n) + "'\n"
		},
		"list words": func(n int) string {
			return "New-CsXmppAllowedPartner -Identity a.example -AdditionalDomains " + strings.Repeat(`"b.example", `, n) + `"c.example"` + "\n"
		},
	} {
		t.Run(name, func(t *testing.T) {
			small, large := allocated(t, []byte(gen(1000))), allocated(t, []byte(gen(8000)))
			assert.Less(t, float64(large)/float64(small), 20.0, "8 times the input allocates %d bytes, against %d", large, small)
		})
	}
}
