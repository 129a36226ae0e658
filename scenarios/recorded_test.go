package scenarios

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/realserver"
)

var (
	update = flag.Bool("update", false, "re-record testdata/recorded from the live real servers")
	// A whole -update runs every real server's suite live (minutes); a
	// change to one server's profile needs only its own.
	recordOnly = flag.String("record", "", "with -update, re-record only the interop suites whose names match this regexp")
)

// recordedDir holds what real servers did, one file per interop suite.
const recordedDir = "testdata/recorded"

// recording is what one interop suite's real server did, as the harness
// saw it, inside TLS included: one negotiation for each different way it
// went (its outcome and exchange, by setting and direction), and the
// negotiations that pin its profile's settings (Pins).
type recording struct {
	Suite    string `json:"suite"`
	Server   string `json:"server"`
	Version  string `json:"version"`
	Recorded string `json:"recorded"`
	Note     string `json:"note"`
	// Pins say, for every setting of the server's profile and every
	// other value it could have, which recorded negotiation comes out
	// differently with that other value ("" when none does).
	Pins []pin       `json:"pins"`
	Runs []*recorded `json:"negotiations"`
}

type recorded struct {
	ID             string          `json:"id"`
	ServerSettings string          `json:"server_settings"`
	Outcome        outcome.Outcome `json:"outcome"`
	Transcript     []sim.Entry     `json:"transcript"`
}

// pin is one setting of a profile told apart from one other value.
type pin struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Other string `json:"other"`
	By    string `json:"by"`
}

func (p pin) String() string { return fmt.Sprintf("%s=%s (not %s)", p.Key, p.Value, p.Other) }

// unpinnable are the settings no negotiation of the interop sweeps can
// tell apart, and why: a guess each, said as such.
var unpinnable = map[string]string{
	"ejabberd no_features=send (not close)":    "ejabberd offers SASL EXTERNAL on every TLS stream: it never has nothing to offer",
	"ejabberd-24 no_features=send (not close)": "ejabberd 24.12 offers SASL EXTERNAL on every TLS stream, as 23.01 does: it never has nothing to offer",
	// Seen in interop runs with cert=missing: the first streams got
	// <failure/> to <starttls/>, later ones a self-signed certificate.
	"ejabberd no_cert_tls=offer-and-refuse (not withhold)":          "ejabberd is never long without a certificate: without certfiles it makes a self-signed one of its own and presents it; only until it has does it answer <starttls/> with <failure/>, so no sweep's outcome is fixed",
	"ejabberd no_cert_tls=offer-and-refuse (not offer-and-fail)":    "ejabberd is never long without a certificate: without certfiles it makes a self-signed one of its own and presents it; only until it has does it answer <starttls/> with <failure/>, so no sweep's outcome is fixed",
	"ejabberd-24 no_cert_tls=offer-and-refuse (not withhold)":       "a guess: ejabberd 24.12 was not run without certfiles; it has 23.01's value, which 23.01 showed only until it had made a self-signed certificate of its own",
	"ejabberd-24 no_cert_tls=offer-and-refuse (not offer-and-fail)": "a guess: ejabberd 24.12 was not run without certfiles; it has 23.01's value, which 23.01 showed only until it had made a self-signed certificate of its own",

	"jabberd2 no_cert_tls=withhold (not offer-and-fail)":   "without a certificate (no <pemfile>) jabberd2 has no TLS at all (tls=NotSupported): it offers no STARTTLS whatever the knob says",
	"jabberd2 no_cert_tls=withhold (not offer-and-refuse)": "without a certificate (no <pemfile>) jabberd2 has no TLS at all (tls=NotSupported): it offers no STARTTLS whatever the knob says",
	// The new generations' answers to what real initiators send
	// unoffered were seen when they met the other servers (the
	// federation suite, docs/federation.md), not yet in a recording of
	// their interop suites.
	"prosody-13 dialback_off=unsupported-stanza-type (not refuse)":          "seen in the federation suite (federation/prosody-13.require-encryption--jabberd2.pemfile/b-to-a), not recorded in interop-prosody-13 yet",
	"prosody-13 dialback_off=unsupported-stanza-type (not not-authorized)":  "seen in the federation suite (federation/prosody-13.require-encryption--jabberd2.pemfile/b-to-a), not recorded in interop-prosody-13 yet",
	"prosody-13 unoffered_starttls=failure (not ignore)":                    "Prosody 13 has a certificate in every swept setting and offers STARTTLS on every plain stream: a <starttls/> it did not offer never reaches it",
	"ejabberd-24 dialback_off=not-authorized (not refuse)":                  "seen in the federation suite (federation/ejabberd-24.starttls-required--jabberd2.pemfile/b-to-a), not recorded in interop-ejabberd-24 yet",
	"ejabberd-24 dialback_off=not-authorized (not unsupported-stanza-type)": "seen in the federation suite (federation/ejabberd-24.starttls-required--jabberd2.pemfile/b-to-a), not recorded in interop-ejabberd-24 yet",
	"ejabberd-24 unoffered_starttls=failure (not ignore)":                   "seen in the federation suite (federation/prosody.require-encryption-dialback--ejabberd-24.starttls-false-dialback/a-to-b), not recorded in interop-ejabberd-24 yet",

	"prosody unoffered_starttls=failure (not ignore)": "Prosody has a certificate in every swept setting and offers STARTTLS on every plain stream: a <starttls/> it did not offer never reaches it",

	"jabberd2 dialback_off=refuse (not not-authorized)":          "jabberd2 has dialback in every setting (it cannot be left out): a db:result always finds it",
	"jabberd2 dialback_off=refuse (not unsupported-stanza-type)": "jabberd2 has dialback in every setting (it cannot be left out): a db:result always finds it",
	"jabberd2 unoffered_starttls=failure (not ignore)":           "with a certificate jabberd2 offers STARTTLS on every plain stream: a <starttls/> it did not offer never reaches it (without one it leaves it unanswered: pinned)",

	"jabberd2 tls=NotSupported (not Optional)":                      "without a certificate (no <pemfile>) jabberd2 can offer no STARTTLS and opens pre-1.0 streams, which never ask for it: TLS NotSupported and Optional come to the same",
	"jabberd2 answer_pings=own-stream (not auto)":                   "jabberd2's own streams to the harness authenticate in every sweep, so its answer comes whichever stream it takes",
	"jabberd2 channel_binding=false (not true)":                     "jabberd2 never offers SASL mechanisms on s2s, beside which channel-binding types are advertised",
	"jabberd2 eku=server (not any)":                                 "jabberd2 never does SASL EXTERNAL on s2s, the only use of the EKU it would ask",
	"jabberd2 eku=server (not client)":                              "jabberd2 never does SASL EXTERNAL on s2s, the only use of the EKU it would ask",
	"jabberd2 external_offer=cert-shown (not always)":               "jabberd2 never offers SASL EXTERNAL on s2s",
	"jabberd2 external_offer=cert-shown (not cert-valid)":           "jabberd2 never offers SASL EXTERNAL on s2s",
	"jabberd2 missing_tls=give-up (not give-up-at-stream)":          "without require_tls jabberd2 requires no TLS, and the partners that require it always offer STARTTLS; with require_tls it waits (pinned)",
	"jabberd2 missing_tls=give-up (not try)":                        "without require_tls jabberd2 requires no TLS, and the partners that require it always offer STARTTLS; with require_tls it waits (pinned)",
	"jabberd2 missing_tls=give-up (not wait)":                       "without require_tls jabberd2 requires no TLS, and the partners that require it always offer STARTTLS; with require_tls it waits (pinned)",
	"jabberd2 no_features=send (not close)":                         "jabberd2 offers dialback on every stream: it never has nothing to offer",
	"jabberd2 no_method=policy-violation (not close)":               "jabberd2 always has dialback and sends db:result even unoffered: as an initiator it is never out of methods",
	"jabberd2 no_method=policy-violation (not unsupported-feature)": "jabberd2 always has dialback and sends db:result even unoffered: as an initiator it is never out of methods",
}

// interopSuites are the suites whose real servers are recorded.
func interopSuites(t *testing.T) []*Suite {
	t.Helper()
	var out []*Suite
	for _, name := range Suites() {
		if strings.HasPrefix(name, "interop-") {
			out = append(out, load(t, name))
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestRecordedRealServers replays what the real servers did against the
// engine playing their profiles, as crypto/tls replays handshakes
// recorded from OpenSSL: every recorded negotiation runs again with the
// engine in the real server's place (the harness's end is the same), and
// must come to the same outcome, step, condition and side included, by
// the same exchange on the server's side (Shape): the same headers,
// features, requests, answers and errors on every connection the real
// negotiation had. So the profiles cannot drift from what the real
// servers did while none runs (go test -short).
//
//	go test ./scenarios -run 'TestRecorded|TestRecordings' -update
//
// records them again from the live servers.
func TestRecordedRealServers(t *testing.T) {
	suites := interopSuites(t)
	if *update {
		only, err := regexp.Compile(*recordOnly)
		require.NoError(t, err, "-record")
		for _, s := range suites {
			if only.MatchString(s.Name) {
				record(t, s)
			}
		}
	}
	for _, s := range suites {
		t.Run(s.Name, func(t *testing.T) {
			// In parallel: each suite mostly waits out the sweeps' 1 s
			// deadline where its server is silent.
			t.Parallel()
			rec := loadRecording(t, s.Name)
			if raceEnabled && !testing.Short() {
				// make test: the live suites run beside, whole, and the
				// engine is compared with each real server there; the
				// detector watches the replays on every fourth one.
				rec.Runs = everyFourth(rec.Runs)
			}
			cases := casesOf(t, s, rec)
			var emus []*Case
			for _, c := range cases {
				emus = append(emus, mutant(t, c, "", ""))
			}
			ns := runAll(t, emus, replayJobs)
			for i, r := range rec.Runs {
				why := differs(ns[i].Result, r, cases[i].Initiator.Server != nil)
				for try := 0; why != "" && try < 2; try++ {
					// Many at once on a busy machine, an in-process
					// negotiation may wait out a deadline it would not:
					// a difference is one that shows alone too.
					why = differs(runAll(t, emus[i:i+1], 1)[0].Result, r, cases[i].Initiator.Server != nil)
				}
				if why != "" {
					t.Errorf("%s: %s did otherwise than the engine playing its profile: %s", r.ID, rec.Server, why)
				}
			}
		})
	}
}

// TestRecordingsPinTheProfiles checks that what the real servers did is
// evidence for every setting of their profiles: for each setting (TLS,
// SASL, dialback and every behaviour knob, as the sweeps' settings have
// them) and each other value it could have, the recorded negotiation
// that pins it comes out differently — outcome or exchange — when the
// engine plays the profile with that one value changed. A value that no
// negotiation tells apart is a guess: it must be in unpinnable, with why.
func TestRecordingsPinTheProfiles(t *testing.T) {
	for _, s := range interopSuites(t) {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			rec := loadRecording(t, s.Name)
			cases := casesOf(t, s, rec)
			byID := map[string]int{}
			for i, r := range rec.Runs {
				byID[r.ID] = i
			}
			// The pins cover every setting the recordings have, and
			// every other value of it.
			want := map[pin]bool{}
			for _, c := range cases {
				for _, p := range alternatives(c) {
					want[p] = true
				}
			}
			var batch []*Case
			var pins []pin
			for _, p := range rec.Pins {
				key := pin{Key: p.Key, Value: p.Value, Other: p.Other}
				require.True(t, want[key], "%s: pinned, but no recorded setting has it: record again with -update", p)
				delete(want, key)
				if p.By == "" {
					if _, ok := unpinnable[rec.Server+" "+p.String()]; !ok {
						t.Errorf("%s %s: no recorded negotiation tells it apart, and unpinnable does not say why", rec.Server, p)
					}
					continue
				}
				i, ok := byID[p.By]
				require.True(t, ok, "%s: pinned by %s, which is not recorded: record again with -update", p, p.By)
				batch = append(batch, mutant(t, cases[i], p.Key, p.Other))
				pins = append(pins, p)
			}
			for p := range want {
				t.Errorf("%s %s: not pinned: record again with -update", rec.Server, p)
			}
			ns := runAll(t, batch, replayJobs)
			for i, p := range pins {
				r := rec.Runs[byID[p.By]]
				if differs(ns[i].Result, r, cases[byID[p.By]].Initiator.Server != nil) == "" {
					t.Errorf("%s %s: %s no longer tells it apart: the engine with %s=%s comes to the same: record again with -update", rec.Server, p, p.By, p.Key, p.Other)
				}
			}
			for k := range unpinnable {
				if strings.HasPrefix(k, rec.Server+" ") && !slices.ContainsFunc(rec.Pins, func(p pin) bool { return p.By == "" && rec.Server+" "+p.String() == k }) {
					t.Errorf("unpinnable lists %q, which a recording now pins (or which no recorded setting has): take it out", k)
				}
			}
		})
	}
}

// casesOf returns the suite's case of each recorded negotiation.
func casesOf(t *testing.T, s *Suite, rec recording) []*Case {
	t.Helper()
	byID := map[string]*Case{}
	for _, c := range s.Cases {
		byID[c.ID] = c
	}
	var out []*Case
	for _, r := range rec.Runs {
		c, ok := byID[r.ID]
		require.True(t, ok, "%s: recorded, but the suite %s no longer has it: record again with -update", r.ID, s.Name)
		e, _ := c.real()
		require.Equal(t, r.ServerSettings, e.Server.String(), "%s: recorded with other server settings: record again with -update", r.ID)
		out = append(out, c)
	}
	return out
}

// alternatives lists the settings of c's real server that a recording
// can pin: every Lync level, dialback and behaviour knob, with each other
// value it could have.
func alternatives(c *Case) []pin {
	e, _ := c.real()
	keys := append([]string{"tls", "sasl", "dialback"}, policy.KnobKeys()...)
	var out []pin
	for _, key := range keys {
		values := policy.KnobValues(key)
		switch key {
		case "tls", "sasl":
			values = []string{"Required", "Optional", "NotSupported"}
		case "dialback":
			values = []string{"true", "false"}
		}
		value := knobValue(e.Settings, key)
		for _, other := range values {
			if !strings.EqualFold(value, other) {
				out = append(out, pin{Key: key, Value: value, Other: other})
			}
		}
	}
	return out
}

// knobValue is the value of the spec key of s as text.
func knobValue(s policy.Settings, key string) string {
	switch key {
	case "tls":
		return s.TLS.String()
	case "sasl":
		return s.SASL.String()
	case "dialback":
		return fmt.Sprint(s.Dialback)
	}
	for _, k := range s.Behaviour.Knobs() {
		if k.Key == key {
			return k.Value
		}
	}
	return ""
}

// mutant is c with the engine playing its real server, with key set to
// value if key is not empty; the partner records what it reads of the
// engine, as it did of the real server (ShapeOf).
func mutant(t *testing.T, c *Case, key, value string) *Case {
	t.Helper()
	emu := emulation(c)
	server, partner := &emu.Receiver, &emu.Initiator
	if c.Initiator.Server != nil {
		server, partner = &emu.Initiator, &emu.Receiver
	}
	if key != "" {
		require.NoError(t, server.Settings.Set(key, value))
	}
	partner.RecordReads = true
	return emu
}

// runAll runs the cases, jobs at once: they are the harness's own.
func runAll(t *testing.T, cases []*Case, jobs int) []*Negotiation {
	t.Helper()
	ns := Run(context.Background(), cases, Options{KeepTranscripts: true, Jobs: jobs})
	require.Len(t, ns, len(cases))
	for _, n := range ns {
		require.NotNil(t, n.Result, "%s: %s", n.Case.ID, n.Why)
	}
	return ns
}

// differs says how res differs from what r recorded of the server: its
// outcome, or what the server said on a connection; "" when it does not.
func differs(res *sim.Result, r *recorded, serverInitiates bool) string {
	if !res.Outcome.Same(r.Outcome) {
		return fmt.Sprintf("the real server came to %s, the engine to %s", r.Outcome, res.Outcome)
	}
	want, have := ShapeOf(r.Transcript, serverInitiates), ShapeOf(res.Transcript, serverInitiates)
	for _, part := range want.Parts() {
		conn, side, _ := strings.Cut(part, " ")
		if side != ServerSide(conn, serverInitiates) || slices.Equal(want.Of(part), have.Of(part)) {
			continue
		}
		return fmt.Sprintf("on %s the real server said\n  %s\nthe engine\n  %s", part,
			strings.Join(want.Of(part), "\n  "), strings.Join(have.Of(part), "\n  "))
	}
	return ""
}

func loadRecording(t *testing.T, suite string) recording {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recordedDir, suite+".json"))
	require.NoError(t, err, "no recording of %s: go test ./scenarios -run 'TestRecorded|TestRecordings' -update", suite)
	var rec recording
	require.NoError(t, json.Unmarshal(b, &rec), suite)
	require.NotEmpty(t, rec.Runs)
	return rec
}

// record runs s live and keeps one negotiation for every different way
// it went, and one that pins each setting of the server's profile
// against each other value, if any does.
func record(t *testing.T, s *Suite) {
	t.Helper()
	e, _ := s.Cases[0].real()
	kind, err := realserver.LookupKind(e.Server.Kind())
	require.NoError(t, err)
	require.NoError(t, realserver.Require(kind.Name))
	// Few at once: a recording is made once in a while, and a busy
	// machine must not make a negotiation wait out a deadline it would not.
	rep := execute(t, []*Suite{s}, Options{KeepTranscripts: true, RealJobs: 2})
	rec := recording{Suite: s.Name, Server: kind.Name, Version: kind.Version, Recorded: time.Now().UTC().Format("2006-01-02"),
		Note: "What the real server did, as the harness saw it: one negotiation for each different outcome and exchange by setting and direction, and those that pin the profile's settings. Written by go test ./scenarios -run 'TestRecorded|TestRecordings' -update; replayed against the engine playing the server's profile."}
	var all []*recorded
	cases := map[*recorded]*Case{}
	keep := map[*recorded]bool{}
	seen := map[string]bool{}
	for _, n := range rep.Negotiations {
		// Only what the real server did, the oracle predicted and the
		// engine did too is recorded: a run that disagreed (a slow
		// start, a machine too busy) is run again, or the model mended.
		require.True(t, n.Pass, "%s: %s %s: not recorded; the live run must pass whole", n.Case.ID, n.Status(), n.Why)
		real, _ := n.Case.real()
		r := &recorded{ID: n.Case.ID, ServerSettings: real.Server.String(), Outcome: n.Result.Outcome, Transcript: n.Result.Transcript}
		all, cases[r] = append(all, r), n.Case
		key := fmt.Sprintf("%s|%s|%s|%s", real.Server, direction(n.Case), n.Result.Outcome.ID(), strings.Join(ShapeOf(n.Result.Transcript, n.Case.Initiator.Server != nil), "|"))
		if !seen[key] {
			seen[key], keep[r] = true, true
		}
	}
	// Pins: for each setting and other value, the negotiations that have
	// the setting are tried in rounds of growing size (1, 2, 4, …), spread
	// over the server's settings, until one comes out differently.
	candidates := map[pin][]*recorded{}
	var order []pin
	for _, r := range spread(all, func(r *recorded) string { return r.ServerSettings }) {
		for _, p := range alternatives(cases[r]) {
			if _, ok := candidates[p]; !ok {
				order = append(order, p)
			}
			candidates[p] = append(candidates[p], r)
		}
	}
	by := map[pin]*recorded{}
	for from, size := 0, 1; ; from, size = from+size, size*2 {
		var batch []*Case
		var tried []pin
		var runs []*recorded
		for _, p := range order {
			if by[p] != nil || from >= len(candidates[p]) {
				continue
			}
			for _, r := range candidates[p][from:min(from+size, len(candidates[p]))] {
				batch = append(batch, mutant(t, cases[r], p.Key, p.Other))
				tried, runs = append(tried, p), append(runs, r)
			}
		}
		if len(batch) == 0 {
			break
		}
		// A difference found among many at once is confirmed alone: on a
		// busy machine an in-process negotiation may wait out a deadline
		// it would not.
		var confirm []*Case
		var found []int
		for i, n := range runAll(t, batch, replayJobs) {
			if differs(n.Result, runs[i], cases[runs[i]].Initiator.Server != nil) != "" {
				confirm, found = append(confirm, batch[i]), append(found, i)
			}
		}
		for k, n := range runAll(t, confirm, runtime.NumCPU()) {
			i := found[k]
			if p := tried[i]; by[p] == nil && differs(n.Result, runs[i], cases[runs[i]].Initiator.Server != nil) != "" {
				by[p] = runs[i]
			}
		}
	}
	for _, p := range order {
		if r := by[p]; r != nil {
			p.By, keep[r] = r.ID, true
		}
		rec.Pins = append(rec.Pins, p)
	}
	for _, r := range all {
		if keep[r] {
			rec.Runs = append(rec.Runs, r)
		}
	}
	slices.SortFunc(rec.Pins, func(a, b pin) int { return strings.Compare(a.String(), b.String()) })
	writeRecording(t, rec)
	t.Logf("%s: %d negotiations, %d recorded, %d of %d settings pinned", s.Name, len(rep.Negotiations), len(rec.Runs), len(by), len(order))
}

// spread orders rs so that every group comes early: the first of each
// group, then the second of each, and so on.
func spread(rs []*recorded, group func(*recorded) string) []*recorded {
	byGroup := map[string][]*recorded{}
	var groups []string
	for _, r := range rs {
		g := group(r)
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], r)
	}
	var out []*recorded
	for i := 0; len(out) < len(rs); i++ {
		for _, g := range groups {
			if i < len(byGroup[g]) {
				out = append(out, byGroup[g][i])
			}
		}
	}
	return out
}

// writeRecording writes rec with one negotiation a line, so that a new
// recording's diff is by negotiation.
func writeRecording(t *testing.T, rec recording) {
	t.Helper()
	runs := rec.Runs
	rec.Runs = nil
	head, err := json.MarshalIndent(rec, "", " ")
	require.NoError(t, err)
	var b strings.Builder
	b.Write(head[:len(head)-len("\n \"negotiations\": null\n}")])
	b.WriteString("\n \"negotiations\": [\n")
	for i, r := range runs {
		line, err := json.Marshal(r)
		require.NoError(t, err)
		b.WriteString("  ")
		b.Write(line)
		if i < len(runs)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(" ]\n}\n")
	var check recording
	require.NoError(t, json.Unmarshal([]byte(b.String()), &check), "the recording written is JSON")
	require.NoError(t, os.MkdirAll(recordedDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(recordedDir, rec.Suite+".json"), []byte(b.String()), 0o644))
}

// replayJobs is how many replays run at once: far more than the CPUs,
// since where the real server was silent a replay waits out the sweeps'
// 1 s deadline and costs nothing meanwhile.
var replayJobs = 4 * runtime.NumCPU()

// everyFourth is the first of every four of runs.
func everyFourth[T any](runs []T) []T {
	var some []T
	for i := 0; i < len(runs); i += 4 {
		some = append(some, runs[i])
	}
	return some
}
