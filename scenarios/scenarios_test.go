package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/realserver"
)

// TestMain checks for leaked goroutines; under -short (the hermetic
// loop) it keeps real servers from starting at all.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Setenv(realserver.NoRealServersEnv, "1")
	}
	goleak.VerifyTestMain(m)
}

func execute(t *testing.T, suites []*Suite, opt Options) *Report {
	t.Helper()
	rep, err := Execute(context.Background(), suites, opt)
	require.NoError(t, err)
	return rep
}

func load(t *testing.T, name string) *Suite {
	t.Helper()
	s, err := Load(name)
	require.NoError(t, err, name)
	return s
}

func TestShippedSuitesLoad(t *testing.T) {
	// An interop suite: per server setting, 5 partners × 2 directions,
	// and 3 partners × 8 bad certificates × 3 refusal points × 2
	// directions; then its own bad certificates against 3 partners × 3
	// refusal points × 2 directions; and 9 scenarios of their own (4
	// partners in both directions: TLS 1.0–1.1, ≤ 1.2, 1.3 only, direct
	// TLS; and db:result before TLS); and what real initiators send
	// unoffered to the receivers that answer it their own way (Prosody
	// 1, ejabberd 2, jabberd2 1).
	interop := func(settings, serverCerts, unoffered int) int {
		return settings*(5*2+3*8*3*2) + serverCerts*3*3*2 + 9 + unoffered
	}
	want := map[string]int{
		"lync2013":         648,
		"pairwise":         18 * 18 * 2 * 13 * 3,
		"profiles":         12*12*2 + 12*12*5,
		"interop-prosody":  interop(5, 11, 1),
		"interop-ejabberd": interop(6, 7, 2),
		"interop-jabberd2": interop(3, 7, 1),
		// mod_s2s_bidi loaded: one setting more than their elders, and
		// partners with XEP-0288 in either namespace, both ways.
		"interop-prosody-13":  interop(6, 11, 0) + 4,
		"interop-ejabberd-24": interop(7, 7, 0) + 4,
	}
	for _, name := range Suites() {
		s := load(t, name)
		assert.Equal(t, name, s.Name)
		assert.NotEmpty(t, s.Description)
		if n, ok := want[name]; ok {
			assert.Len(t, s.Cases, n, name)
		}
	}
	_, err := Load("nosuch")
	assert.ErrorContains(t, err, `no suite "nosuch": shipped suites are failures, interop-ejabberd, interop-ejabberd-24, interop-jabberd2, interop-prosody, interop-prosody-13, lync2013, pairwise, profiles, robustness`)
}

func TestParseErrorsNameFileLineAndAcceptedValues(t *testing.T) {
	const head = "suite: t\nscenarios:\n  - name: x\n"
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"unknown top key", "suite: t\ncolour: red\n", "bad.yaml:2:1: unknown key \"colour\" in a scenario file (accepted: suite, description, endpoints, scenarios, sweeps)"},
		{"unknown endpoint key", head + "    initiator: {domain: a.test, tlss: Required}\n", "bad.yaml:4:33: unknown key \"tlss\" in initiator; did you mean \"tls\"? (accepted: domain, profile, tls, sasl"},
		{"bad level", head + "    initiator: {domain: a.test, tls: Sometimes}\n", "bad.yaml:4:38: tls: invalid level \"Sometimes\": accepted values are Required, Optional, NotSupported"},
		{"bad cert", head + "    initiator: {domain: a.test, cert: rusty}\n", "bad.yaml:4:39: cert: invalid certificate state \"rusty\""},
		{"bad expect", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: carrier-pigeon\n", "bad.yaml:6:13: expect: invalid value \"carrier-pigeon\": accepted values are sasl-over-tls"},
		{"bad step", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: {fail: {step: lunch}}\n", "bad.yaml:6:27: step: invalid step \"lunch\": accepted values are tcp, stream"},
		{"bad side", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: {fail: {by: bystander}}\n", "bad.yaml:6:25: by: invalid side \"bystander\": accepted values are initiator, receiver, authoritative"},
		{"bad condition", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: {fail: {condition: gloom}}\n", "bad.yaml:6:32: condition: invalid condition \"gloom\": accepted values are"},
		{"no expect", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n", "bad.yaml:3:5: scenario \"x\" needs expect"},
		{"same domains", head + "    initiator: {domain: a.test}\n    receiver: {domain: a.test}\n    expect: fail\n", "give them different domains"},
		{"unknown name", head + "    initiator: lync\n", "bad.yaml:4:16: initiator: no endpoint named \"lync\" (named endpoints: none)"},
		{"bad row", "suite: t\nsweeps:\n  - name: s\n    rows: [M19]\n", "bad.yaml:4:11: rows: no row \"M19\" (accepted: all, or M1 to M18)"},
		{"bad direction", head + "    direction: sideways\n", "bad.yaml:4:16: direction: invalid value \"sideways\": accepted values are one, both"},
		{"not yaml", "suite: [\n", "bad.yaml: yaml:"},
		{"empty", "", "bad.yaml: empty file"},
		// Found by FuzzParse: repeated values let a sweep ask for millions
		// of negotiations.
		{"repeated list value", "suite: t\nsweeps:\n  - {name: s, strict: [true, true]}\n", `bad.yaml:3:30: strict: "true" given twice`},
		{"bad limit", head + "    initiator: {domain: a.test, max_element_bytes: 3}\n", "max_element_bytes: \"3\" is not a number of bytes"},
		{"duplicate", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: fail\n  - name: x\n    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: fail\n", "bad.yaml:7: scenario \"x\" is declared twice (also at bad.yaml:3)"},
		{"endpoint named twice", "suite: t\nendpoints:\n  lync: {domain: a.test}\n  lync: {domain: b.test}\nscenarios: []\n", "bad.yaml:4:3: endpoint \"lync\" is named twice (also at line 3)"},
		{"unknown server", head + "    initiator: {server: openfire}\n", "bad.yaml:4:25: server: unknown server \"openfire\": accepted values are prosody, prosody-13, ejabberd"},
		{"knob of another server", head + "    initiator: {server: prosody, s2s_use_starttls: optional}\n", "unknown key \"s2s_use_starttls\" in initiator (a real prosody); did you mean \"s2s_direct_tls\"? (accepted: server, domain, s2s_require_encryption, s2s_secure_auth, dialback, cert, s2s_direct_tls)"},
		{"bad knob value", head + "    initiator: {server: ejabberd, s2s_use_starttls: sometimes}\n", "s2s_use_starttls: invalid value \"sometimes\": accepted values are false, optional, required"},
		{"two real servers", head + "    initiator: {server: prosody}\n    receiver: {server: ejabberd}\n    expect: fail\n", "two real servers; one side must be the harness's"},
		// A real server's domain names its certificate and key files:
		// refused where it is read, before anything is written.
		{"path in a real server's domain", head + "    receiver: {server: prosody, domain: \"../../../tmp/x/evil\"}\n", `bad.yaml:4:41: domain: invalid domain "../../../tmp/x/evil": a path separator`},
		{"path in a domain", head + "    initiator: {domain: \"a/../../b\"}\n", `bad.yaml:4:25: domain: invalid domain "a/../../b"`},
		{"empty label", head + "    initiator: {domain: a..test}\n", `domain: invalid domain "a..test": empty label`},
		{"settings without server", "suite: t\nsweeps:\n  - {name: s, settings: all}\n", "settings: give the server whose settings these are"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestExpectationsParseIntoOutcomes(t *testing.T) {
	s, err := Parse("x.yaml", []byte(`suite: x
scenarios:
  - {name: a, initiator: {domain: a.test}, receiver: {domain: b.test}, expect: tls-dialback}
  - {name: b, initiator: {domain: a.test}, receiver: {domain: b.test}, expect: fail}
  - {name: c, initiator: {domain: a.test}, receiver: {domain: b.test}, expect: {fail: {step: sasl, by: receiver}}}
  - {name: d, initiator: {domain: a.test}, receiver: {domain: b.test}, expect: predicted}
  - {name: e, initiator: {server: prosody, s2s_secure_auth: true}, receiver: {domain: b.test}, expect: predicted-outcome}
`))
	require.NoError(t, err)
	require.Len(t, s.Cases, 5)
	assert.Equal(t, Expect{Want: outcome.Succeeded(outcome.TLSDialback)}, s.Cases[0].Expect)
	assert.Equal(t, Expect{Want: outcome.AnyFailure()}, s.Cases[1].Expect)
	assert.Equal(t, Expect{Want: outcome.Failed(outcome.Failure{Step: outcome.StepSASL, By: outcome.Receiver})}, s.Cases[2].Expect)
	assert.Equal(t, Predicted, s.Cases[3].Expect.Oracle)
	assert.Equal(t, PredictedOutcome, s.Cases[4].Expect.Oracle)
	real := s.Cases[4].Initiator
	require.NotNil(t, real.Server)
	assert.Equal(t, "prosody.test", real.Domain)
	assert.Equal(t, policy.Required, real.Settings.TLS, "secure_auth maps to TLS Required")
}

func TestEndpointProfileAppliesFirstThenKeysOverride(t *testing.T) {
	s, err := Parse("x.yaml", []byte(`suite: x
scenarios:
  - name: a
    initiator: {domain: a.test, cert: no-client-auth, dialback: false}
    receiver: {domain: b.test, refuse: after-tls, profile: ejabberd-23-example}
    expect: predicted
`))
	require.NoError(t, err)
	got := s.Cases[0].Receiver.Settings
	want, _ := policy.ParseSpec("profile=ejabberd-23-example,refuse=after-tls")
	assert.Equal(t, want, got)

	_, err = Parse("x.yaml", []byte("suite: x\nscenarios:\n  - {name: a, initiator: {domain: a.test, profile: ejabberd-99}, receiver: {domain: b.test}}\n"))
	assert.ErrorContains(t, err, `x.yaml:3:52: profile: unknown profile "ejabberd-99": accepted values are xmppneg, prosody-0.12`)
}

// A failure's reason is what the administrator reads: an expectation
// that names it fails when the failure says something else.
func TestExpectedReasonMustBeInTheFailure(t *testing.T) {
	const suite = `suite: x
scenarios:
  - name: a
    initiator: {domain: a.test, cert: client-auth-only}
    receiver: {domain: b.test}
    expect: {fail: {step: tls-handshake, reason: %q}}
`
	for reason, pass := range map[string]bool{"clientAuth only": true, "expired": false} {
		s, err := Parse("x.yaml", []byte(fmt.Sprintf(suite, reason)))
		require.NoError(t, err)
		rep := execute(t, []*Suite{s}, Options{})
		require.Len(t, rep.Negotiations, 1)
		n := rep.Negotiations[0]
		assert.Equal(t, pass, n.Pass, "%s: %s", reason, n.Why)
		if !pass {
			assert.Contains(t, n.Why, `expected the failure to say "expired"; it said "`)
		}
	}
}

func TestSelectFiltersAndShards(t *testing.T) {
	s := load(t, "lync2013")
	seen := map[string]int{}
	for i := 1; i <= 3; i++ {
		for _, c := range Select(s.Cases, Options{Shard: i, Shards: 3}) {
			seen[c.ID]++
		}
	}
	assert.Len(t, seen, len(s.Cases), "the shards cover every case")
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
	got := Select(s.Cases, Options{Filter: regexp.MustCompile(`/M7/M13/`)})
	require.Len(t, got, 2)
	assert.True(t, got[0].RowInitiates)
	assert.False(t, got[1].RowInitiates)
}

func TestRobustnessSuiteClassifiesEveryFault(t *testing.T) {
	s := load(t, "robustness")
	rep := execute(t, []*Suite{s}, Options{})
	for _, n := range rep.Negotiations {
		assert.True(t, n.Pass, "%s: %s", n.Case.ID, n.Why)
	}
	// Every fault is exercised by at least one scenario.
	used := map[string]bool{}
	for _, c := range s.Cases {
		for _, e := range append([]Endpoint{c.Initiator, c.Receiver}, c.Others...) {
			for _, f := range strings.Split(e.Faults.String(), ",") {
				used[strings.SplitN(f, "=", 2)[0]] = true
			}
		}
	}
	for _, f := range append(sim.AllFaults(), "silent-at", "close-at") {
		assert.True(t, used[string(f)], "no robustness scenario uses %s", f)
	}
}

func TestFailuresSuiteReproducesEveryFailure(t *testing.T) {
	rep := execute(t, []*Suite{load(t, "failures")}, Options{})
	for _, n := range rep.Negotiations {
		assert.True(t, n.Pass, "%s: %s", n.Case.ID, n.Why)
	}
	assert.True(t, rep.Passed())
}

// The row comparison must be able to fail: remove every TLS Dialback
// success of M7 and it must disagree, saying what is missing.
func TestCompareRowsDetectsDisagreement(t *testing.T) {
	s := load(t, "lync2013")
	cases := Select(s.Cases, Options{Filter: regexp.MustCompile(`/M7/`)})
	ns := Run(context.Background(), cases, Options{})
	rows := CompareRows(Sweep{Suite: "lync2013", Name: "matrix", Rows: []string{"M7"}}, ns)
	require.Len(t, rows, 1)
	assert.True(t, rows[0].Agree)
	for _, n := range ns {
		if n.Result.Outcome.Method == outcome.TLSDialback {
			n.Result.Outcome = outcome.AnyFailure()
		}
	}
	rows = CompareRows(Sweep{Suite: "lync2013", Name: "matrix", Rows: []string{"M7"}}, ns)
	assert.False(t, rows[0].Agree)
	assert.Equal(t, "documented but never observed: TLS Dialback", rows[0].Why)
}

func TestVerifyLync2013(t *testing.T) {
	rep := execute(t, []*Suite{load(t, "lync2013")}, Options{KeepTranscripts: true})
	require.Len(t, rep.Negotiations, 648)
	require.Len(t, rep.Rows, 18)
	for _, rc := range rep.Rows {
		assert.True(t, rc.Agree, "%s: %s", rc.Row, rc.Why)
		assert.Equal(t, 36, rc.Negotiations, rc.Row)
		if !rc.Valid {
			assert.Zero(t, rc.Succeeded, "%s is invalid: no partner may succeed", rc.Row)
		}
		assert.Len(t, rc.Witnesses, len(rc.Warnings), "%s: a witness for every warning", rc.Row)
		assert.Empty(t, rc.Unwitnessed, rc.Row)
	}
	for _, n := range rep.Negotiations {
		assert.True(t, n.Pass, "%s: %s", n.Case.ID, n.Why)
	}
	m1 := rep.Rows[0]
	require.Len(t, m1.Witnesses, 1)
	assert.Equal(t, "M1 [dialback-disabled]: with partner M13 (Req/NS/T), row initiates: dialback failed (policy-violation, raised by initiator): no common authentication method: the receiver offered no SASL EXTERNAL; the initiator has TLS and SASL both Required, which disables dialback",
		m1.Witnesses[0].Text("M1"))
	require.Len(t, rep.Inconsistencies, 1)
	assert.Equal(t, "real negotiations of Req/Opt/T achieved SASL over TLS, TLS Dialback: M7 is right, C2 is wrong", rep.Inconsistencies[0].Verdict)

	// Every report format renders it.
	dir := t.TempDir()
	require.NoError(t, WriteTranscripts(dir, rep.Negotiations))
	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, rep))
	var doc struct {
		Negotiations []NegotiationJSON `json:"negotiations"`
		Rows         []RowCheck        `json:"rows"`
		OK           bool              `json:"ok"`
		Summary      Summary           `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
	assert.True(t, doc.OK)
	assert.Len(t, doc.Negotiations, 648)
	assert.Equal(t, 648, doc.Summary.Passed)
	first := doc.Negotiations[0]
	assert.Equal(t, first.Outcome, first.Observed.ID())
	require.NotNil(t, first.Expected)
	assert.True(t, first.Observed.Match(*first.Expected))
	assert.FileExists(t, filepath.Join(dir, first.TranscriptFile))
	tr, err := os.ReadFile(filepath.Join(dir, first.TranscriptFile))
	require.NoError(t, err)
	assert.Contains(t, string(tr), "<stream:stream")

	var ju bytes.Buffer
	require.NoError(t, WriteJUnit(&ju, rep))
	var suites struct {
		Tests  int `xml:"tests,attr"`
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   *int   `xml:"errors,attr"`
			Skipped  *int   `xml:"skipped,attr"`
			Time     string `xml:"time,attr"`
			Cases    []struct {
				Name string `xml:"name,attr"`
				Time string `xml:"time,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(ju.Bytes(), &suites))
	require.Len(t, suites.Suites, 2)
	assert.Equal(t, 666, suites.Tests)
	assert.Equal(t, 648, suites.Suites[0].Tests)
	assert.Equal(t, 18, suites.Suites[1].Tests)
	require.NotNil(t, suites.Suites[0].Errors)
	require.NotNil(t, suites.Suites[0].Skipped)
	assert.Regexp(t, `^\d+(\.\d{1,6})?$`, suites.Suites[0].Time)
	for _, c := range suites.Suites[0].Cases {
		assert.False(t, strings.HasPrefix(c.Name, "lync2013/"), "the suite is not repeated in %s", c.Name)
		assert.Regexp(t, `^\d+(\.\d{1,6})?$`, c.Time)
	}

	var h bytes.Buffer
	require.NoError(t, WriteHTML(&h, rep))
	page := h.String()
	assert.Contains(t, page, "All 648 negotiations as expected")
	assert.Equal(t, 648, strings.Count(page, `href="transcripts/`), "every grid cell links to its transcript")
	assert.Contains(t, page, "M7 is right, C2 is wrong")

	var txt bytes.Buffer
	WriteText(&txt, rep, Style{})
	assert.Contains(t, txt.String(), "Summary: 648 passed, 0 failed")
	assert.Contains(t, txt.String(), "648 negotiations in")
}

// The HTML report groups a sweep's grids by refusal point, in the
// order of policy.RefusalPoints, whatever order the sweep declares.
func TestHTMLHasOneSectionPerRefusalPoint(t *testing.T) {
	s, err := Parse("x.yaml", []byte(`suite: x
description: d
sweeps:
  - {name: g, rows: [M7], partners: [C1], partner_certs: [expired, no-eku], refuse: [sasl, handshake, after-tls], expect: predicted}
`))
	require.NoError(t, err)
	rep := execute(t, []*Suite{s}, Options{})
	var h bytes.Buffer
	require.NoError(t, WriteHTML(&h, rep))
	page := h.String()
	assert.Equal(t, 3, strings.Count(page, "<h2>x / g: an invalid certificate refused"))
	var at []int
	for _, point := range []string{"refused during the TLS handshake", "refused right after TLS", "refused only at SASL"} {
		assert.Equal(t, 1, strings.Count(page, point), point)
		at = append(at, strings.Index(page, point))
	}
	assert.True(t, sort.IntsAreSorted(at), "sections in order handshake, after-tls, sasl: %v", at)
	assert.Equal(t, 6, strings.Count(page, "<details"), "one grid per certificate and refusal point")
}

// A sweep keeps the transcripts of what did not pass, and gives up the
// others once Each has seen them, unless asked to keep them.
func TestPassingTranscriptsAreDroppedUnlessKept(t *testing.T) {
	s, err := Parse("x.yaml", []byte(`suite: x
scenarios:
  - {name: ok, initiator: {domain: a.test}, receiver: {domain: b.test}, expect: sasl-over-tls}
  - {name: wrong, initiator: {domain: a.test}, receiver: {domain: b.test}, expect: tcp-dialback}
`))
	require.NoError(t, err)
	seen := 0
	ns := Run(context.Background(), s.Cases, Options{Each: func(n *Negotiation) {
		assert.NotEmpty(t, n.Result.Transcript, "Each sees the transcript")
		seen++
	}})
	require.Len(t, ns, 2)
	assert.Equal(t, 2, seen)
	assert.True(t, ns[0].Pass)
	assert.Empty(t, ns[0].Result.Transcript, "given up once it passed")
	assert.False(t, ns[1].Pass)
	assert.NotEmpty(t, ns[1].Result.Transcript, "kept: it did not pass")
	ns = Run(context.Background(), s.Cases, Options{KeepTranscripts: true})
	assert.NotEmpty(t, ns[0].Result.Transcript)
}

func TestRunIsDeterministic(t *testing.T) {
	s := load(t, "lync2013")
	cases := Select(s.Cases, Options{Filter: regexp.MustCompile(`/M(3|13)/`)})
	a := Run(context.Background(), cases, Options{Jobs: 4})
	var order []string
	b := Run(context.Background(), cases, Options{Jobs: 1, Repeat: 2, Each: func(n *Negotiation) { order = append(order, n.Case.ID) }})
	require.Len(t, a, len(cases))
	require.Len(t, order, len(cases), "Each sees every case once")
	for i := range a {
		assert.Same(t, cases[i], a[i].Case)
		assert.Equal(t, cases[i].ID, order[i], "Each sees them in declaration order")
		assert.True(t, a[i].Observed().Same(b[i].Observed()), cases[i].ID)
		assert.Empty(t, b[i].Unstable)
	}
}

// An interrupted run starts nothing more, counts nothing it cut short as
// failed, and says it was interrupted.
func TestInterruptedRunCountsNoFailure(t *testing.T) {
	s := load(t, "lync2013")
	ctx, cancel := context.WithCancel(context.Background())
	rep, err := Execute(ctx, []*Suite{s}, Options{Jobs: 2, Progress: func(n, _ int) {
		if n == 20 {
			cancel()
		}
	}})
	require.NoError(t, err)
	assert.True(t, rep.Interrupted)
	assert.False(t, rep.Passed())
	sum := rep.Summary()
	assert.Less(t, len(rep.Negotiations), 648)
	assert.Zero(t, sum.Failed, "nothing cut short is counted as failed")
	assert.Equal(t, len(rep.Negotiations), sum.Passed+sum.Cancelled)
	assert.Empty(t, rep.Rows, "rows are not compared with part of their negotiations")
	var txt bytes.Buffer
	WriteSummary(&txt, rep, Style{})
	assert.Contains(t, txt.String(), "interrupted after ")
	assert.Contains(t, txt.String(), "of 648 negotiations")
}

func TestSameSuiteTwiceIsRefused(t *testing.T) {
	s := load(t, "failures")
	_, err := Execute(context.Background(), []*Suite{s, s}, Options{})
	assert.ErrorContains(t, err, `suite "failures" (failures.yaml) is given twice`)
	other := *s
	other.File = "copy.yaml"
	_, err = Execute(context.Background(), []*Suite{s, &other}, Options{})
	assert.ErrorContains(t, err, `suite "failures" is declared by both failures.yaml and copy.yaml`)
}

// The invariants must be able to fail: a transcript in which a receiver
// accepts SASL on a plain stream is caught whatever the expectation says.
func TestInvariantsCatchSASLOnPlainStream(t *testing.T) {
	c := &Case{Receiver: Endpoint{Settings: policy.DefaultSettings()}, Expect: Expect{Want: outcome.Succeeded(outcome.SASLOverTLS)}}
	r := &sim.Result{Outcome: outcome.Succeeded(outcome.SASLOverTLS), Transcript: []sim.Entry{
		{Conn: "main", From: "initiator a.test", XML: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>"},
		{Conn: "main", From: "receiver b.test", XML: "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"},
	}}
	assert.Equal(t, []string{"SASL <auth/> sent on a plain stream", "SASL success on a plain stream"}, invariants(c, r))
	n := &Negotiation{Case: c, Result: r}
	n.expect()
	n.check()
	assert.False(t, n.Pass)
}

func TestTextTableStaysAligned(t *testing.T) {
	rep := execute(t, []*Suite{load(t, "failures")}, Options{Filter: regexp.MustCompile(`secret|unreachable`)})
	rep.Negotiations[0].Pass, rep.Negotiations[0].Why = false, "made to fail for the test"
	var b bytes.Buffer
	WriteText(&b, rep, Style{})
	var col []int
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "PASS") || strings.HasPrefix(line, "FAIL") {
			col = append(col, strings.Index(line, "failed at"))
		}
	}
	require.Len(t, col, 2)
	assert.Equal(t, col[0], col[1], "the observed column starts at the same place on every row:\n%s", b.String())
	assert.Contains(t, b.String(), "2 negotiations in")
}

func TestTextColoursStatusesOnlyWhenAsked(t *testing.T) {
	rep := execute(t, []*Suite{load(t, "failures")}, Options{Filter: regexp.MustCompile(`secret`)})
	var plain, coloured bytes.Buffer
	WriteText(&plain, rep, Style{})
	WriteText(&coloured, rep, Style{Color: true})
	assert.NotContains(t, plain.String(), "\x1b[")
	assert.Contains(t, coloured.String(), "\x1b[32mPASS\x1b[0m")
	assert.Contains(t, coloured.String(), "\x1b[32mSummary: 1 passed, 0 failed\x1b[0m")
}

// Four shards run separately and merged give the report of one run:
// negotiation by negotiation, and the rows compared with the matrix.
func TestShardsMergeIntoTheWholeRun(t *testing.T) {
	whole := execute(t, []*Suite{load(t, "lync2013")}, Options{})
	dir := t.TempDir()
	var shards []*ShardReport
	for i := 1; i <= 4; i++ {
		rep := execute(t, []*Suite{load(t, "lync2013")}, Options{Shard: i, Shards: 4})
		assert.Empty(t, rep.Rows, "a shard compares no row: it has only some of each row's negotiations")
		b, err := json.Marshal(rep)
		require.NoError(t, err)
		path := filepath.Join(dir, fmt.Sprintf("shard%d.json", i))
		require.NoError(t, os.WriteFile(path, b, 0o644))
		sr, err := ReadShard(path)
		require.NoError(t, err)
		shards = append(shards, sr)
	}
	// Given in any order.
	merged, err := Merge([]*ShardReport{shards[2], shards[0], shards[3], shards[1]})
	require.NoError(t, err)
	require.Len(t, merged.Negotiations, len(whole.Negotiations))
	for i, n := range whole.Negotiations {
		m := merged.Negotiations[i]
		require.Equal(t, n.Case.ID, m.Case.ID)
		assert.True(t, n.Observed().Same(m.Observed()), n.Case.ID)
		assert.Equal(t, n.Pass, m.Pass, n.Case.ID)
	}
	require.Len(t, merged.Rows, len(whole.Rows))
	for i := range whole.Rows {
		assert.Equal(t, whole.Rows[i].Agree, merged.Rows[i].Agree, whole.Rows[i].Row)
		assert.Equal(t, whole.Rows[i].Observed, merged.Rows[i].Observed, whole.Rows[i].Row)
	}
	assert.Equal(t, whole.Summary().Passed, merged.Summary().Passed)
	assert.True(t, merged.Passed())

	_, err = Merge(shards[:3])
	assert.ErrorContains(t, err, "shard 4/4 missing")
	_, err = Merge([]*ShardReport{shards[0], shards[1], shards[2], shards[3], shards[1]})
	assert.ErrorContains(t, err, "shard 2/4 is given twice")
	shards[1].Negotiations = shards[1].Negotiations[1:]
	_, err = Merge(shards)
	assert.ErrorContains(t, err, "lacks 1 of its negotiations")
}
