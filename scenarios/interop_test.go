package scenarios

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/policy/outcome"
	"xmppneg/sim/realserver"
)

// TestInteropProsody, TestInteropEjabberd and TestInteropJabberd2 run
// the interop suites: real servers under every setting of their sweeps,
// against the harness partners in every certificate state, in both
// directions, through the same runner and report as every other suite,
// each outcome against the oracle for the server's profile and against
// the engine playing that profile. A missing server fails with the
// command that installs it; it is never skipped.
func TestInteropProsody(t *testing.T) { testInterop(t, "prosody") }

func TestInteropEjabberd(t *testing.T) { testInterop(t, "ejabberd") }

// jabberd2 has no SASL EXTERNAL on s2s: a negotiation with it that ends
// in SASL over TLS would mean the harness, not jabberd2, decided it.
func TestInteropJabberd2(t *testing.T) { testInterop(t, "jabberd2", outcome.SASLOverTLS) }

func testInterop(t *testing.T, server string, never ...outcome.Method) {
	if err := realserver.Require(server); err != nil {
		t.Fatalf("%v", err)
	}
	s := load(t, "interop-"+server)
	rep := execute(t, []*Suite{s}, Options{})
	assert.Len(t, rep.Negotiations, len(s.Cases))
	methods := map[string]int{}
	for _, n := range rep.Negotiations {
		if !n.Pass {
			transcript := "(no transcript: the negotiation did not run)"
			if n.Result != nil {
				transcript = n.Result.TranscriptText()
			}
			t.Errorf("%s: %s %s\n%s\nserver log:\n%s", n.Case.ID, n.Status(), n.Why, transcript, n.ServerLog)
		}
		methods[n.Observed().ID()]++
	}
	// The sweep is only worth something if the server really negotiated
	// every way it can.
	for _, m := range append(outcome.Methods, 0) {
		id := outcome.Outcome{Method: m}.ID()
		if slices.Contains(never, m) {
			assert.Zero(t, methods[id], "%d negotiations with %s ended with %s, which it cannot do", methods[id], server, id)
		} else {
			assert.Positive(t, methods[id], "no negotiation with %s ended with %s", server, id)
		}
	}
}
