package scenarios

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/policy/outcome"
	"xmppneg/sim/realserver"
)

// TestInteropProsody and TestInteropEjabberd run the interop suites:
// real servers under every setting of their sweeps, against the harness
// partners, in both directions, through the same runner and report as
// every other suite, each outcome against the oracle for the server's
// mapped settings. A missing server fails with the command that installs
// it; it is never skipped.
func TestInteropProsody(t *testing.T) { testInterop(t, "prosody") }

func TestInteropEjabberd(t *testing.T) { testInterop(t, "ejabberd") }

func testInterop(t *testing.T, server string) {
	if err := realserver.Require(server); err != nil {
		t.Fatalf("%v", err)
	}
	s := load(t, "interop-"+server)
	rep := execute(t, []*Suite{s}, Options{})
	assert.Len(t, rep.Negotiations, len(s.Cases))
	methods := map[string]int{}
	for _, n := range rep.Negotiations {
		assert.True(t, n.Pass, "%s: %s\n%s\nserver log:\n%s", n.Case.ID, n.Why, n.Result.TranscriptText(), n.ServerLog)
		methods[n.Observed().ID()]++
	}
	// The sweep is only worth something if the server really negotiated.
	for _, m := range append(outcome.Methods, 0) {
		id := outcome.Outcome{Method: m}.ID()
		assert.Positive(t, methods[id], "no negotiation with %s ended with %s", server, id)
	}
}
