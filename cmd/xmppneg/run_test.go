package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/scenarios"
	"xmppneg/sim/realserver"
)

// TestMain lets a test run this binary's main in a subprocess: the
// process is what receives signals.
//
// Under -short (the hermetic loop) real servers are kept from starting,
// in the subprocesses too.
func TestMain(m *testing.M) {
	if os.Getenv("XMPPNEG_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	flag.Parse()
	if testing.Short() {
		os.Setenv(realserver.NoRealServersEnv, "1")
	}
	os.Exit(m.Run())
}

// subprocess starts xmppneg with args in a process of its own.
func subprocess(t *testing.T, args ...string) (*exec.Cmd, io.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "XMPPNEG_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, stdout, &stderr
}

// waitExit waits for cmd to end, within a deadline, and returns its exit
// code.
func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(within):
		t.Fatalf("xmppneg %v did not exit within %s of the signal", cmd.Args[1:], within)
		return -1
	}
}

// Ctrl-C during a run: nothing more starts, nothing cut short counts as
// failed, the summary of what completed is printed, exit 130. Here with
// JSON Lines, which shows the run is under way as soon as its first line
// arrives.
func TestInterruptStreamingRun(t *testing.T) {
	t.Parallel()
	cmd, stdout, stderr := subprocess(t, "run", "pairwise", "-o", "jsonl", "-j", "2")
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	require.True(t, lines.Scan(), "no negotiation came out: %s", stderr)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	var last map[string]any
	n := 1
	for lines.Scan() {
		require.NoError(t, json.Unmarshal(lines.Bytes(), &last), lines.Text())
		n++
	}
	assert.Equal(t, exitInterrupted, waitExit(t, cmd, 10*time.Second), stderr.String())
	require.NotNil(t, last)
	assert.Equal(t, "summary", last["kind"])
	assert.Equal(t, true, last["interrupted"])
	assert.Equal(t, false, last["ok"])
	sum := last["summary"].(map[string]any)
	assert.Equal(t, 0.0, sum["failed"], "nothing cut short counts as failed")
	total := suiteSize(t, "pairwise")
	assert.Less(t, sum["negotiations"], float64(total))
	assert.Equal(t, float64(n-1), sum["negotiations"].(float64)+sum["cancelled"].(float64))
	assert.Contains(t, stderr.String(), "interrupted after ")
	assert.Contains(t, stderr.String(), fmt.Sprintf(" of %d negotiations", total))
}

// The same as a table: the summary, and no FAIL lines for what was not
// run. The run is seen to be under way when its first transcript is
// written.
func TestInterruptTableRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, stdout, stderr := subprocess(t, "run", "pairwise", "--out", dir, "-j", "2")
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if files, _ := filepath.Glob(filepath.Join(dir, "transcripts", "*.txt")); len(files) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no transcript was written: %s", stderr)
		<-tick.C
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	out, _ := io.ReadAll(stdout)
	assert.Equal(t, exitInterrupted, waitExit(t, cmd, 10*time.Second), stderr.String())
	text := string(out)
	assert.Regexp(t, fmt.Sprintf(`interrupted after \d+ of %d negotiations`, suiteSize(t, "pairwise")), text)
	assert.Regexp(t, `Summary: \d+ passed, 0 failed`, text)
	assert.NotContains(t, text, "FAIL ")
	report, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(report), "interrupted after ")
}

// verify -o json --out writes the JSON report to its file. (The verify
// tests each run the 648 negotiations once: text and JSON, each through
// --out, which writes what stdout would have had.)
func TestVerifyJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, _, stderr := runCLI("verify", "-o", "json", "--out", dir)
	require.Equal(t, exitOK, code, stderr)
	out, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var got struct {
		Rows []struct {
			Row        string   `json:"row"`
			TLS        string   `json:"tls"`
			SASL       string   `json:"sasl"`
			Dialback   bool     `json:"dialback"`
			Valid      bool     `json:"valid"`
			Documented []string `json:"documented"`
			Observed   []string `json:"observed"`
			Agree      bool     `json:"agree"`
			Witnesses  []any    `json:"witnesses"`
		} `json:"rows"`
		Inconsistencies []map[string]any `json:"inconsistencies"`
		Negotiations    []struct {
			Outcome  string         `json:"outcome"`
			Observed map[string]any `json:"observed"`
			Expected map[string]any `json:"expected"`
		} `json:"negotiations"`
		Summary struct {
			Negotiations int    `json:"negotiations"`
			Passed       int    `json:"passed"`
			DurationMS   *int64 `json:"duration_ms"`
		} `json:"summary"`
		OK bool `json:"ok"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got.Rows, 18)
	for _, r := range got.Rows {
		assert.True(t, r.Agree, r.Row)
		assert.Equal(t, r.Documented, r.Observed, r.Row)
		assert.NotNil(t, r.Witnesses, r.Row)
	}
	assert.Equal(t, "M1", got.Rows[0].Row)
	assert.Len(t, got.Rows[0].Witnesses, 1)
	assert.Equal(t, 648, got.Summary.Negotiations)
	assert.Equal(t, 648, got.Summary.Passed)
	assert.NotNil(t, got.Summary.DurationMS)
	assert.True(t, got.OK)
	require.Len(t, got.Negotiations, 648)
	assert.Equal(t, got.Negotiations[0].Outcome, got.Negotiations[0].Observed["outcome"])
	assert.NotEmpty(t, got.Negotiations[0].Expected["text"])
	require.Len(t, got.Inconsistencies, 1)
}

// verify --out writes the text report to report.txt, without terminal
// escapes, and says so with the verdict.
func TestVerifyText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, stderr := runCLI("verify", "--out", dir)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "wrote "+filepath.Join(dir, "report.txt"))
	assert.Contains(t, out, "OK: 18 of 18 rows agree")
	data, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	require.NoError(t, err)
	report := string(data)
	assert.Contains(t, report, "OK: 18 of 18 rows agree with the full matrix (648 negotiations")
	assert.Contains(t, report, "M7 is right, C2 is wrong")
	assert.Contains(t, report, "M1 [dialback-disabled]: with partner M13")
	assert.Contains(t, report, "Oracle: 648 of 648 negotiations as predicted.")
	assert.NotContains(t, report, "\x1b[")
}

func TestRunWritesReportsAndTranscripts(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runCLI("run", "failures", "-o", "html", "--out", dir, "--run", "secret|unreachable")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "Summary: 2 passed, 0 failed")
	assert.Contains(t, out, "wrote "+filepath.Join(dir, "report.html")+" and 2 transcripts")
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(page), "dialback-secret-mismatch")
	files, _ := filepath.Glob(filepath.Join(dir, "transcripts", "*.txt"))
	assert.Len(t, files, 2)

	code, out, _ = runCLI("run", "lync2013", "--run", "/M7/M13/", "-o", "junit")
	assert.Equal(t, exitOK, code)
	assert.Regexp(t, `<testsuite name="lync2013" tests="2" failures="0" errors="0" skipped="0" time="[0-9.]+">`, out)
	assert.Contains(t, out, `name="matrix/M7/M13/row-initiates"`, "test names do not repeat the suite")
}

const wishful = `suite: mine
scenarios:
  - name: wishful thinking
    initiator: {domain: a.test, tls: NotSupported, sasl: NotSupported, dialback: true}
    receiver: {domain: b.test, tls: Required}
    expect: sasl-over-tls
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(f, []byte(content), 0o644))
	return f
}

func TestRunScenarioFileAndFailingExpectation(t *testing.T) {
	f := writeFile(t, "mine.yaml", wishful)
	code, out, _ := runCLI("run", f)
	assert.Equal(t, exitFail, code)
	assert.Regexp(t, `(?m)^FAIL +mine/wishful-thinking +failed at starttls`, out)
	assert.Contains(t, out, "why: expected sasl-over-tls, observed failed at starttls (unsupported-feature by initiator)")
	assert.Contains(t, out, "1 negotiation in ", "singular")
	assert.Contains(t, out, "Summary: 0 passed, 1 failed")

	// JUnit as CI systems show it: the failure message is the explanation.
	code, out, _ = runCLI("run", f, "-o", "junit")
	assert.Equal(t, exitFail, code)
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal([]byte(out), &doc))
	c := doc.Suites[0].Cases[0]
	assert.Equal(t, "wishful-thinking", c.Name)
	assert.Equal(t, "expected sasl-over-tls, observed failed at starttls (unsupported-feature by initiator)", c.Failure.Message)
	assert.Contains(t, c.Failure.Text, "mine.yaml:3")

	// With --out the report goes to the file and what failed still shows.
	dir := t.TempDir()
	code, out, _ = runCLI("run", f, "--out", dir)
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "FAIL ")
	assert.Contains(t, out, "wishful-thinking")
	assert.Contains(t, out, "transcript: transcripts/mine__wishful-thinking.txt")

	// -v prints the transcript it promises.
	code, out, _ = runCLI("run", f, "-v")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "<stream:stream")
	assert.Contains(t, out, "<required/>")
}

func TestRunJSONLStreamsOneObjectPerNegotiation(t *testing.T) {
	code, out, stderr := runCLI("run", "failures", "-o", "jsonl")
	require.Equal(t, exitOK, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, suiteSize(t, "failures")+1, "one line per negotiation and the summary")
	for i, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		want := "negotiation"
		if i == len(lines)-1 {
			want = "summary"
		}
		assert.Equal(t, want, rec["kind"])
	}
}

func TestRunUsageErrors(t *testing.T) {
	file := writeFile(t, "a-file", "x")
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"run"}, "name at least one suite"},
		{[]string{"run", "nosuch"}, `no suite "nosuch": shipped suites are failures, interop-ejabberd, interop-ejabberd-24, interop-jabberd2, interop-prosody, interop-prosody-13, lync2013, pairwise, profiles, robustness`},
		{[]string{"run", "failures", "--shard", "4/3"}, `--shard: "4/3" is not I/N`},
		{[]string{"run", "failures", "--run", "("}, "--run: error parsing regexp"},
		{[]string{"run", "failures", "--run", "nothing-matches-this"}, `matches --run "nothing-matches-this" (ids look like failures/`},
		{[]string{"run", "failures", "failures"}, `suite "failures" (failures.yaml) is given twice`},
		{[]string{"run", "failures", "--out", filepath.Join(file, "report")}, "--out " + filepath.Join(file, "report") + ": cannot create it: not a directory"},
		{[]string{"verify", "-j", "0"}, "-j must be at least 1"},
		{[]string{"run", "failures", "--shrad", "1/2"}, "unknown flag --shrad; did you mean --shard?"},
	} {
		code, out, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
		assert.Empty(t, out, tc.args)
	}
}

// A misspelled flag gets one line, not the whole help.
func TestMisspelledFlagOneLine(t *testing.T) {
	code, _, stderr := runCLI("check", "--tsl", "Required")
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "xmppneg: unknown flag --tsl; did you mean --tls? (see 'xmppneg check --help')\n", stderr)
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(args...)
		assert.Equal(t, exitOK, code)
		assert.Regexp(t, regexp.MustCompile(`^xmppneg \S+.* go1\.\d+`), out)
	}
}

func TestVersionHelp(t *testing.T) {
	code, out, _ := runCLI("version", "--help")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "Usage: xmppneg version")
	assert.NotRegexp(t, `^xmppneg \S+ .*go1`, out, "help, not the version")
}

// run --timeout is the deadline of endpoints whose scenario sets none.
func TestRunTimeout(t *testing.T) {
	f := writeFile(t, "silent.yaml", `suite: silent
scenarios:
  - name: a receiver that says nothing after the header
    initiator: {domain: a.test}
    receiver: {domain: b.test, faults: [silent-at=starttls]}
    expect: fail
`)
	start := time.Now()
	code, out, stderr := runCLI("run", f, "--timeout", "300ms", "-v")
	require.Equal(t, exitOK, code, "%s\n%s", out, stderr)
	assert.Contains(t, out, "within 300ms")
	assert.Less(t, time.Since(start), 3*time.Second)
}

// More shards than negotiations: the empty shard writes an empty
// report (not a usage error), merge takes it with the others, and the
// merged HTML links only to transcripts that exist beside it.
func TestEmptyShardThenMergeWithTranscripts(t *testing.T) {
	dir := t.TempDir()
	var outs []string
	empties := 0
	for i := 1; i <= 2; i++ {
		// One negotiation, two shards: one of them is empty.
		out := filepath.Join(dir, fmt.Sprintf("shard%d", i))
		code, stdout, stderr := runCLI("run", "failures", "--run", "secret", "--shard", fmt.Sprintf("%d/2", i), "-o", "json", "--out", out)
		require.Equal(t, exitOK, code, "shard %d: %s%s", i, stdout, stderr)
		outs = append(outs, out)
		var rep struct {
			Negotiations []any `json:"negotiations"`
			OK           bool  `json:"ok"`
		}
		data, err := os.ReadFile(filepath.Join(out, "report.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &rep))
		assert.True(t, rep.OK)
		if len(rep.Negotiations) == 0 {
			empties++
		}
	}
	require.Equal(t, 1, empties)

	merged := filepath.Join(dir, "merged")
	code, out, stderr := runCLI(append([]string{"merge", "-o", "html", "--out", merged}, outs...)...)
	require.Equal(t, exitOK, code, "%s%s", out, stderr)
	page, err := os.ReadFile(filepath.Join(merged, "report.html"))
	require.NoError(t, err)
	links := regexp.MustCompile(`href="([^"#]+)"`).FindAllStringSubmatch(string(page), -1)
	require.NotEmpty(t, links)
	for _, l := range links {
		_, err := os.Stat(filepath.Join(merged, l[1]))
		assert.NoError(t, err, "the merged report links to %s", l[1])
	}
}

// An interrupted run's JUnit counts what never ran as skipped:
// tests= is the whole run, not what had ended.
func TestInterruptedRunJUnitSkipsWhatNeverRan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, _, stderr := subprocess(t, "run", "pairwise", "-o", "junit", "--out", dir, "-j", "2")
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if files, _ := filepath.Glob(filepath.Join(dir, "transcripts", "*.txt")); len(files) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no transcript was written: %s", stderr)
		<-tick.C
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	assert.Equal(t, exitInterrupted, waitExit(t, cmd, 10*time.Second), stderr.String())
	data, err := os.ReadFile(filepath.Join(dir, "report.xml"))
	require.NoError(t, err)
	var doc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(data, &doc))
	require.Len(t, doc.Suites, 1)
	assert.Equal(t, suiteSize(t, "pairwise"), doc.Suites[0].Tests)
	assert.Zero(t, doc.Suites[0].Failures)
	assert.Greater(t, doc.Suites[0].Skipped, 0)
}

// suiteSize is how many negotiations a shipped suite declares.
func suiteSize(t *testing.T, name string) int {
	t.Helper()
	s, err := scenarios.Load(name)
	require.NoError(t, err)
	return len(s.Cases)
}

// CI shards by the environment (as Bazel and BoGo do), then merges.
func TestShardsFromTheEnvironmentThenMerge(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "sharding-honoured")
	var outs []string
	for i := 0; i < 2; i++ {
		t.Setenv("TEST_TOTAL_SHARDS", "2")
		t.Setenv("TEST_SHARD_INDEX", fmt.Sprint(i))
		t.Setenv("TEST_SHARD_STATUS_FILE", status)
		out := filepath.Join(dir, fmt.Sprintf("shard%d", i))
		code, _, stderr := runCLI("run", "failures", "-o", "json", "--out", out)
		require.Equal(t, exitOK, code, stderr)
		outs = append(outs, out)
	}
	_, err := os.Stat(status)
	assert.NoError(t, err, "TEST_SHARD_STATUS_FILE is touched")
	t.Setenv("TEST_TOTAL_SHARDS", "")
	code, out, stderr := runCLI(append([]string{"merge", "-o", "json"}, outs...)...)
	require.Equal(t, exitOK, code, stderr)
	var rep struct {
		Negotiations []struct {
			ID string `json:"id"`
		} `json:"negotiations"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Len(t, rep.Negotiations, suiteSize(t, "failures"))

	code, _, stderr = runCLI("merge", outs[0])
	assert.Equal(t, exitFail, code)
	assert.Contains(t, stderr, "shard 2/2 missing")

	t.Setenv("TEST_TOTAL_SHARDS", "2")
	t.Setenv("TEST_SHARD_INDEX", "2")
	code, _, stderr = runCLI("run", "failures")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "TEST_TOTAL_SHARDS=\"2\" and TEST_SHARD_INDEX=\"2\"")
}
