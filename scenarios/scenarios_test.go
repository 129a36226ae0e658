package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/policy"
	"xmppneg/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestShippedSuitesLoad(t *testing.T) {
	want := map[string]int{"lync2013": 648, "pairwise": 18 * 18 * 2 * 7 * 2}
	for _, name := range Suites() {
		s, err := Load(name)
		require.NoError(t, err, name)
		assert.Equal(t, name, s.Name)
		assert.NotEmpty(t, s.Description)
		if n, ok := want[name]; ok {
			assert.Len(t, s.Cases, n, name)
		}
	}
	_, err := Load("nosuch")
	assert.ErrorContains(t, err, `no suite "nosuch": shipped suites are failures, lync2013, pairwise`)
}

func TestParseErrorsNameFileLineAndAcceptedValues(t *testing.T) {
	const head = "suite: t\nscenarios:\n  - name: x\n"
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"unknown top key", "suite: t\ncolour: red\n", "bad.yaml:2:1: unknown key \"colour\" in a scenario file (accepted: suite, description, endpoints, scenarios, sweeps)"},
		{"unknown endpoint key", head + "    initiator: {domain: a.test, tlss: Required}\n", "bad.yaml:4:33: unknown key \"tlss\" in initiator (accepted: domain, tls, sasl"},
		{"bad level", head + "    initiator: {domain: a.test, tls: Sometimes}\n", "bad.yaml:4:38: tls: invalid level \"Sometimes\": accepted values are Required, Optional, NotSupported"},
		{"bad cert", head + "    initiator: {domain: a.test, cert: rusty}\n", "bad.yaml:4:39: cert: invalid certificate state \"rusty\""},
		{"bad expect", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: carrier-pigeon\n", "bad.yaml:6:13: expect: invalid value \"carrier-pigeon\": accepted values are sasl-over-tls"},
		{"bad step", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: {fail: {step: lunch}}\n", "bad.yaml:6:27: step: invalid value \"lunch\": accepted values are tcp, stream"},
		{"no expect", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n", "bad.yaml:3:5: scenario \"x\" needs expect"},
		{"same domains", head + "    initiator: {domain: a.test}\n    receiver: {domain: a.test}\n    expect: fail\n", "give them different domains"},
		{"unknown name", head + "    initiator: lync\n", "bad.yaml:4:16: initiator: no endpoint named \"lync\" (named endpoints: none)"},
		{"bad row", "suite: t\nsweeps:\n  - name: s\n    rows: [M19]\n", "bad.yaml:4:11: rows: no row \"M19\" in the full matrix"},
		{"bad direction", head + "    direction: sideways\n", "bad.yaml:4:16: direction: invalid value \"sideways\": accepted values are one, both"},
		{"not yaml", "suite: [\n", "bad.yaml: yaml:"},
		{"empty", "", "bad.yaml: empty file"},
		// Found by FuzzParse: repeated values let a sweep ask for millions
		// of negotiations.
		{"repeated list value", "suite: t\nsweeps:\n  - {name: s, strict: [true, true]}\n", `bad.yaml:3:23: strict: "true" given twice`},
		{"bad limit", head + "    initiator: {domain: a.test, max_element_bytes: 3}\n", "max_element_bytes: \"3\" is not a number of bytes"},
		{"duplicate", head + "    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: fail\n  - name: x\n    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: fail\n", "bad.yaml:7: scenario \"x\" is declared twice (also at bad.yaml:3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestSelectFiltersAndShards(t *testing.T) {
	s, err := Load("lync2013")
	require.NoError(t, err)
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
	s, err := Load("robustness")
	require.NoError(t, err)
	rep := Execute(context.Background(), []*Suite{s}, Options{})
	for _, o := range rep.Outcomes {
		assert.True(t, o.Pass, "%s: %s", o.Case.ID, o.Why)
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
	s, err := Load("failures")
	require.NoError(t, err)
	rep := Execute(context.Background(), []*Suite{s}, Options{})
	for _, o := range rep.Outcomes {
		assert.True(t, o.Pass, "%s: %s", o.Case.ID, o.Why)
	}
	assert.True(t, rep.Passed())
}

// The row comparison must be able to fail: remove every TLS Dialback
// success of M7 and it must disagree, saying what is missing.
func TestCompareRowsDetectsDisagreement(t *testing.T) {
	s, err := Load("lync2013")
	require.NoError(t, err)
	cases := Select(s.Cases, Options{Filter: regexp.MustCompile(`/M7/`)})
	outcomes := Run(context.Background(), cases, Options{})
	rows := CompareRows(Sweep{Suite: "lync2013", Name: "matrix", Rows: []string{"M7"}}, outcomes)
	require.Len(t, rows, 1)
	assert.True(t, rows[0].Agree)
	for _, o := range outcomes {
		if o.Result.Outcome == string(policy.TLSDialback) {
			o.Result.Outcome = "failed"
		}
	}
	rows = CompareRows(Sweep{Suite: "lync2013", Name: "matrix", Rows: []string{"M7"}}, outcomes)
	assert.False(t, rows[0].Agree)
	assert.Equal(t, "documented but never observed: TLS Dialback", rows[0].Why)
}

func TestVerifyLync2013(t *testing.T) {
	s, err := Load("lync2013")
	require.NoError(t, err)
	rep := Execute(context.Background(), []*Suite{s}, Options{})
	require.Len(t, rep.Outcomes, 648)
	require.Len(t, rep.Rows, 18)
	for _, rc := range rep.Rows {
		assert.True(t, rc.Agree, "%s: %s", rc.Row, rc.Why)
		assert.Equal(t, 36, rc.Negotiations, rc.Row)
		if !rc.Valid {
			assert.Zero(t, rc.Succeeded, "%s is invalid: no partner may succeed", rc.Row)
		}
		for _, w := range rc.Warnings {
			assert.True(t, hasWitness(rc, w.Code), "%s has no witness for %s", rc.Row, w.Code)
		}
	}
	for _, o := range rep.Outcomes {
		assert.True(t, o.Pass, "%s: %s", o.Case.ID, o.Why)
	}
	ev := Inconsistencies(rep.Rows)
	require.Len(t, ev, 1)
	assert.Equal(t, "real negotiations of Req/Opt/T achieved SASL over TLS, TLS Dialback: M7 is right, C2 is wrong", ev[0].Verdict)

	// Every report format renders it.
	dir := t.TempDir()
	require.NoError(t, WriteTranscripts(dir, rep.Outcomes))
	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, rep))
	var doc struct {
		Cases []jsonCase `json:"cases"`
		Rows  []RowCheck `json:"rows"`
		OK    bool       `json:"ok"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
	assert.True(t, doc.OK)
	assert.Len(t, doc.Cases, 648)
	assert.FileExists(t, filepath.Join(dir, doc.Cases[0].Transcript))
	tr, err := os.ReadFile(filepath.Join(dir, doc.Cases[0].Transcript))
	require.NoError(t, err)
	assert.Contains(t, string(tr), "<stream:stream")

	var ju bytes.Buffer
	require.NoError(t, WriteJUnit(&ju, rep))
	var suites struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(ju.Bytes(), &suites))
	require.Len(t, suites.Suites, 2)
	assert.Equal(t, 648, suites.Suites[0].Tests)
	assert.Equal(t, 18, suites.Suites[1].Tests)

	var h bytes.Buffer
	require.NoError(t, WriteHTML(&h, rep))
	page := h.String()
	assert.Contains(t, page, "All 648 negotiations as expected")
	assert.Equal(t, 648, strings.Count(page, `href="transcripts/`), "every grid cell links to its transcript")
	assert.Contains(t, page, "M7 is right, C2 is wrong")

	var txt bytes.Buffer
	WriteText(&txt, rep, false)
	assert.Contains(t, txt.String(), "Summary: 648 passed, 0 failed")
}

func TestRunIsDeterministic(t *testing.T) {
	s, err := Load("lync2013")
	require.NoError(t, err)
	cases := Select(s.Cases, Options{Filter: regexp.MustCompile(`/M(3|13)/`)})
	a := Run(context.Background(), cases, Options{Jobs: 4})
	b := Run(context.Background(), cases, Options{Jobs: 1, Repeat: 2})
	require.Len(t, a, len(cases))
	for i := range a {
		assert.Same(t, cases[i], a[i].Case)
		assert.Equal(t, a[i].Observed(), b[i].Observed(), cases[i].ID)
		assert.Empty(t, b[i].Unstable)
	}
}

// The invariants must be able to fail: a transcript in which a receiver
// accepts SASL on a plain stream is caught whatever the expectation says.
func TestInvariantsCatchSASLOnPlainStream(t *testing.T) {
	c := &Case{Receiver: Endpoint{Settings: policy.DefaultSettings()}}
	r := &sim.Result{Outcome: "sasl-over-tls", Transcript: []sim.Entry{
		{Conn: "main", From: "initiator a.test", XML: "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>"},
		{Conn: "main", From: "receiver b.test", XML: "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"},
	}}
	assert.Equal(t, []string{"SASL <auth/> sent on a plain stream", "SASL success on a plain stream"}, invariants(c, r))
	o := &Outcome{Case: &Case{Expect: Expect{Method: policy.SASLOverTLS}, Receiver: c.Receiver}, Result: r}
	o.check()
	assert.False(t, o.Pass)
}
