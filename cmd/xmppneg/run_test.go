package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerifyJSON(t *testing.T) {
	code, out, stderr := runCLI("verify", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
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
		Negotiations    int              `json:"negotiations"`
		DurationMS      *int64           `json:"duration_ms"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Rows, 18)
	for _, r := range got.Rows {
		assert.True(t, r.Agree, r.Row)
		assert.Equal(t, r.Documented, r.Observed, r.Row)
		assert.NotNil(t, r.Witnesses, r.Row)
	}
	assert.Equal(t, "M1", got.Rows[0].Row)
	assert.Len(t, got.Rows[0].Witnesses, 1)
	assert.Equal(t, 648, got.Negotiations)
	assert.NotNil(t, got.DurationMS)
	require.Len(t, got.Inconsistencies, 1)
}

func TestVerifyText(t *testing.T) {
	code, out, _ := runCLI("verify")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "OK: 18 of 18 rows agree with the full matrix (648 negotiations")
	assert.Contains(t, out, "M7 is right, C2 is wrong")
	assert.Contains(t, out, "M1 [dialback-disabled]: with partner M13")
}

func TestRunWritesReportsAndTranscripts(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runCLI("run", "failures", "-o", "html", "--out", dir, "--run", "secret|unreachable")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "Summary: 2 passed, 0 failed")
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(page), "dialback-secret-mismatch")
	files, _ := filepath.Glob(filepath.Join(dir, "transcripts", "*.txt"))
	assert.Len(t, files, 2)

	code, out, _ = runCLI("run", "lync2013", "--run", "/M7/M13/", "-o", "junit")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, `<testsuite name="lync2013" tests="2" failures="0">`)
}

func TestRunScenarioFileAndFailingExpectation(t *testing.T) {
	f := filepath.Join(t.TempDir(), "mine.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`suite: mine
scenarios:
  - name: wishful thinking
    initiator: {domain: a.test, tls: NotSupported, sasl: NotSupported, dialback: true}
    receiver: {domain: b.test, tls: Required}
    expect: sasl-over-tls
`), 0o644))
	code, out, _ := runCLI("run", f)
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "FAIL  mine/wishful-thinking")
	assert.Contains(t, out, "expected SASL over TLS, observed failed at starttls (unsupported-feature by initiator)")
	assert.Contains(t, out, "Summary: 0 passed, 1 failed")
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"run"}, "name at least one suite"},
		{[]string{"run", "nosuch"}, `no suite "nosuch"`},
		{[]string{"run", "failures", "--shard", "4/3"}, `--shard: "4/3" is not I/N`},
		{[]string{"run", "failures", "--run", "("}, "--run: error parsing regexp"},
		{[]string{"run", "failures", "--run", "nothing-matches-this"}, "no negotiation matches"},
		{[]string{"verify", "-j", "0"}, "-j must be at least 1"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}
