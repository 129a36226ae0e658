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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy/outcome"
)

// A negotiation cut short by an interruption shows what happened to it:
// cancelled, during the step it was in. The deadline that the
// interruption set off is not a failure: "no answer within 5s" in a run
// cut at 200 ms would be invented.
func TestCancelledNegotiationShowsNoInventedFailure(t *testing.T) {
	s, err := Parse("x.yaml", []byte(`suite: x
scenarios:
  - name: a receiver that goes silent
    initiator: {domain: a.test}
    receiver: {domain: b.test, faults: [silent-at=starttls]}
    expect: sasl-over-tls
`))
	require.NoError(t, err)
	// Interrupted as Ctrl-C does it: the run's context is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(200*time.Millisecond, cancel).Stop()
	rep, err := Execute(ctx, []*Suite{s}, Options{})
	require.NoError(t, err)
	require.Len(t, rep.Negotiations, 1)
	n := rep.Negotiations[0]
	require.True(t, n.Cancelled, "%s", TranscriptText(n))
	got := n.Observed()
	require.NotNil(t, got.Failure)
	assert.Equal(t, outcome.CancelledByCaller, got.Failure.Condition)
	assert.Equal(t, "cancelled during starttls", got.String())
	for _, text := range []string{got.String(), got.Explain(), n.Result.Explain(), TranscriptText(n)} {
		assert.NotContains(t, text, "within 5s", "no invented deadline")
		assert.NotContains(t, text, "timeout", "no invented deadline")
	}
	var b bytes.Buffer
	WriteText(&b, rep, Style{})
	assert.Regexp(t, `CANCELLED\s+x/a-receiver-that-goes-silent\s+cancelled during starttls`, b.String())
	rec := Record(n, false)
	assert.Equal(t, "cancelled", string(rec.Failure.Condition))
}

// A failure that happened before the interruption is not lost to it.
func TestFailureBeforeTheInterruptionStays(t *testing.T) {
	s, err := Parse("x.yaml", []byte(`suite: x
scenarios:
  - name: no TLS against TLS required
    initiator: {domain: a.test, tls: NotSupported, sasl: NotSupported}
    receiver: {domain: b.test, tls: Required}
    expect: fail
`))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	rep, err := Execute(ctx, []*Suite{s}, Options{Each: func(*Negotiation) { cancel() }})
	cancel()
	require.NoError(t, err)
	require.Len(t, rep.Negotiations, 1)
	assert.False(t, rep.Negotiations[0].Cancelled)
	assert.Equal(t, outcome.StepStartTLS, rep.Negotiations[0].Observed().Failure.Step)
}

// JUnit of an interrupted run lists the negotiations that never ran as
// skipped: tests= is what was to run.
func TestInterruptedJUnitCountsWhatNeverRan(t *testing.T) {
	s := load(t, "failures")
	ctx, cancel := context.WithCancel(context.Background())
	rep, err := Execute(ctx, []*Suite{s}, Options{Jobs: 1, Progress: func(n, _ int) {
		if n == 3 {
			cancel()
		}
	}})
	cancel()
	require.NoError(t, err)
	require.Less(t, len(rep.Negotiations), len(s.Cases))
	var b bytes.Buffer
	require.NoError(t, WriteJUnit(&b, rep))
	var doc struct {
		Suites []struct {
			Tests   int `xml:"tests,attr"`
			Skipped int `xml:"skipped,attr"`
			Cases   []struct {
				Name    string `xml:"name,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(b.Bytes(), &doc))
	require.Len(t, doc.Suites, 1)
	assert.Equal(t, len(s.Cases), doc.Suites[0].Tests, "every negotiation that was to run")
	assert.Equal(t, len(s.Cases)-rep.Summary().Passed, doc.Suites[0].Skipped)
	last := doc.Suites[0].Cases[len(doc.Suites[0].Cases)-1]
	require.NotNil(t, last.Skipped)
	assert.Contains(t, last.Skipped.Message, "not run: the run was interrupted")
}

// merge links only to transcripts that exist: with --out it copies the
// shards' transcripts next to its report.
func TestMergeCopiesTheTranscriptsItLinks(t *testing.T) {
	dir := t.TempDir()
	var shards []*ShardReport
	for i := 1; i <= 2; i++ {
		out := filepath.Join(dir, "shard"+string(rune('0'+i)))
		rep := execute(t, []*Suite{load(t, "failures")}, Options{Shard: i, Shards: 2, Filter: regexp.MustCompile("secret|unreachable|silent")})
		require.NoError(t, WriteTranscripts(out, rep.Negotiations))
		b, err := json.Marshal(rep)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, "report.json"), b, 0o644))
		sr, err := ReadShard(out)
		require.NoError(t, err)
		shards = append(shards, sr)
	}
	merged, err := Merge(shards)
	require.NoError(t, err)
	to := filepath.Join(dir, "merged")
	require.NoError(t, CopyTranscripts(merged, to))
	for _, n := range merged.Negotiations {
		require.NotEmpty(t, n.Transcript, n.Case.ID)
		data, err := os.ReadFile(filepath.Join(to, n.Transcript))
		require.NoError(t, err, "the merged report links to %s", n.Transcript)
		assert.True(t, strings.HasPrefix(string(data), n.Case.ID))
	}
	// Without a directory to copy to, the link is the shard's own file.
	merged, err = Merge(shards)
	require.NoError(t, err)
	require.NoError(t, CopyTranscripts(merged, ""))
	for _, n := range merged.Negotiations {
		_, err := os.Stat(n.Transcript)
		assert.NoError(t, err, n.Transcript)
	}
}
