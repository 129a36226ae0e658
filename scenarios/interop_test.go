package scenarios

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// The bookworm-backports generation, unpacked beside the system's by
// make deps.
func TestInteropProsody13(t *testing.T) { testInterop(t, "prosody-13") }

func TestInteropEjabberd24(t *testing.T) { testInterop(t, "ejabberd-24") }

// jabberd2 has no SASL EXTERNAL on s2s: a negotiation with it that ends
// in SASL over TLS would mean the harness, not jabberd2, decided it.
func TestInteropJabberd2(t *testing.T) { testInterop(t, "jabberd2", outcome.SASLOverTLS) }

func testInterop(t *testing.T, server string, never ...outcome.Method) {
	if testing.Short() {
		t.Skipf("%s: go test -short runs no real server; TestRecordedRealServers replays what they did (go test and make test run them)", server)
	}
	if err := realserver.Require(server); err != nil {
		t.Fatalf("%v", err)
	}
	t.Parallel() // the servers of each suite are their own; their starts overlap
	s := load(t, "interop-"+server)
	opt := Options{}
	want := len(s.Cases)
	if raceEnabled {
		// Under the race detector a negotiation costs several times the
		// CPU, and make test runs every suite whole in a build without
		// the detector (make interop): here the detector watches the
		// runner's real-server paths on a quarter of the knobs sweep
		// (every kind of server process, shared or not, a few starts
		// each), and TestInteropSuitesReachEveryMethod checks what the
		// whole sweeps reach.
		opt.Filter = regexp.MustCompile(`^interop-[a-z0-9-]+/knobs/`)
		opt.Shard, opt.Shards = 1, 4
		want = len(Select(s.Cases, opt))
		t.Logf("race detector: %d of the suite's %d negotiations (make interop runs them all)", want, len(s.Cases))
	}
	rep := execute(t, []*Suite{s}, opt)
	assert.Len(t, rep.Negotiations, want)
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
	if raceEnabled {
		return // a part of the suite: TestInteropSuitesReachEveryMethod
	}
	checkMethods(t, server, methods, never)
}

// TestInteropSuitesReachEveryMethod: a sweep is only worth something if
// the server negotiates every way it can in it. Every negotiation of the
// interop suites must come out as predicted (make interop, live), so the
// predictions say what the live sweeps reach.
func TestInteropSuitesReachEveryMethod(t *testing.T) {
	for _, k := range realserver.Kinds() {
		s := load(t, "interop-"+k.Name)
		methods := map[string]int{}
		for _, c := range s.Cases {
			n := &Negotiation{Case: c}
			n.expect()
			methods[n.Expected.ID()]++
		}
		var never []outcome.Method
		if k.Name == "jabberd2" {
			never = []outcome.Method{outcome.SASLOverTLS}
		}
		checkMethods(t, k.Name, methods, never)
	}
}

func checkMethods(t *testing.T, server string, methods map[string]int, never []outcome.Method) {
	t.Helper()
	for _, m := range append(outcome.Methods, 0) {
		id := outcome.Outcome{Method: m}.ID()
		if slices.Contains(never, m) {
			assert.Zero(t, methods[id], "%d negotiations with %s ended with %s, which it cannot do", methods[id], server, id)
		} else {
			assert.Positive(t, methods[id], "no negotiation with %s ended with %s", server, id)
		}
	}
}

// The schedule runs every negotiation exactly once per repetition; a
// real server setting's negotiations are split into slots of at most
// slotSize, each of one setting, the largest first.
func TestScheduleSlotsRealServers(t *testing.T) {
	s := load(t, "interop-prosody")
	for _, repeat := range []int{1, 3} {
		own, real := schedule(s.Cases, repeat)
		assert.Empty(t, own)
		seen := map[item]int{}
		for k, j := range real {
			assert.LessOrEqual(t, len(j.items), slotSize, j.slot)
			if k > 0 {
				assert.LessOrEqual(t, len(j.items), len(real[k-1].items), "largest first")
			}
			e, _ := s.Cases[j.items[0].i].real()
			for _, it := range j.items {
				seen[it]++
				other, _ := s.Cases[it.i].real()
				assert.Equal(t, settingKey(e.Server), settingKey(other.Server), "one setting per slot")
			}
		}
		assert.Len(t, seen, len(s.Cases)*repeat)
		for it, n := range seen {
			assert.Equal(t, 1, n, "%v", it)
		}
		// A setting of 154 negotiations (×3) is split.
		assert.Greater(t, len(real), len(realserver.Kinds()[0].Sweep())+9, "repeat %d", repeat)
	}
}

// TestInteropOutcomesAreKnown keeps every negotiation of the interop
// suites and what it comes to in testdata/interop-outcomes.txt: what
// the oracle predicts, which the live suites show the real servers and
// the engine doing (TestInterop*). A change of a single outcome, or of
// the set of negotiations, shows here first, in review, and needs
// -update. The file was first written from the live run before the
// suites were made faster (2,570 negotiations, identical since).
func TestInteropOutcomesAreKnown(t *testing.T) {
	const file = "testdata/interop-outcomes.txt"
	var b strings.Builder
	b.WriteString("# Every negotiation of the interop suites and its outcome: go test ./scenarios -run TestInteropOutcomesAreKnown -update\n")
	for _, name := range Suites() {
		if !strings.HasPrefix(name, "interop-") {
			continue
		}
		for _, c := range load(t, name).Cases {
			n := &Negotiation{Case: c}
			n.expect()
			fmt.Fprintf(&b, "%s\t%s\n", c.ID, n.Expected)
		}
	}
	if *update {
		require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err)
	if got := b.String(); got != string(want) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
		for i := 0; i < max(len(wl), len(gl)); i++ {
			w, g := "", ""
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Fatalf("%s differs from the interop suites at line %d:\n  file:  %s\n  now:   %s\n(go test ./scenarios -run TestInteropOutcomesAreKnown -update after checking why)", file, i+1, w, g)
			}
		}
	}
}
