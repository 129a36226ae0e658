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
	name := "evil.example\x1b]0;owned\x07\x1b[2J"
	e := lyncpartner.Default(name)
	e.Source = "p:1"
	// The report as Evaluate makes it for such a partner, without its
	// negotiations (writers compute nothing).
	rep := &Report{Partners: []*Partner{{Entry: e, Row: "M1", Valid: true, Runs: "unknown", Status: Unknown,
		Warnings: []Finding{{Code: "w", Message: "about " + name}},
		Blockers: []Finding{{Code: "unknown-partner", Message: "what " + name + " runs is neither declared nor probed"}},
		Notes:    []Finding{{Code: "n", Message: "noted of " + name}}}}}
	for _, st := range []Style{{}, {Verbose: true}, {Lang: Korean}} {
		var b bytes.Buffer
		WriteText(&b, rep, st)
		assert.NotContains(t, b.String(), "\x1b")
		assert.NotContains(t, b.String(), "\x07")
		assert.Contains(t, b.String(), `evil.example\x1b]0;owned\x07\x1b[2J`)
	}
}
