package partners

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/policy/lyncpartner"
)

// A partner's name that reaches the report with terminal escapes in it
// (the readers refuse such names; a report can be built from entries
// made elsewhere) is printed as text: no escape reaches the terminal.
func TestTextReportPrintsNoTerminalEscapes(t *testing.T) {
	e := lyncpartner.Default("evil.example\x1b]0;owned\x07\x1b[2J")
	e.Source = "p:1"
	rep := evaluateMany(t, []lyncpartner.Entry{e})
	for _, st := range []Style{{}, {Verbose: true}, {Lang: Korean}} {
		var b bytes.Buffer
		WriteText(&b, rep, st)
		assert.NotContains(t, b.String(), "\x1b")
		assert.NotContains(t, b.String(), "\x07")
		assert.Contains(t, b.String(), `evil.example\x1b]0;owned\x07\x1b[2J`)
	}
}
