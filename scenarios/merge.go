package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"xmppneg/policy/safefile"
	"xmppneg/sim"
)

// ShardReport is the JSON report of one shard, as `run -o json` writes
// it, and where it was read from.
type ShardReport struct {
	Path         string
	Summary      SummaryJSON
	Negotiations []NegotiationJSON
}

// ReadShard reads the JSON report at path, or path/report.json when path
// is a directory (as `run -o json --out DIR` leaves it).
func ReadShard(path string) (*ShardReport, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "report.json")
	}
	data, err := safefile.Read(path, MaxReportBytes, "")
	if err != nil {
		return nil, err
	}
	var doc struct {
		SummaryJSON
		Negotiations []NegotiationJSON `json:"negotiations"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a JSON report of 'xmppneg run -o json': %v", path, err)
	}
	if doc.Suites == nil || doc.Negotiations == nil {
		return nil, fmt.Errorf("%s: not a JSON report of 'xmppneg run -o json' (no suites or negotiations)", path)
	}
	return &ShardReport{Path: path, Summary: doc.SummaryJSON, Negotiations: doc.Negotiations}, nil
}

// Merge combines the reports of the shards of one run into the report
// the run would have given unsharded: the same suites, filter and
// number of shards, each shard present once, each negotiation of the
// suites found in exactly the shard that should have run it. The suites
// are read again (by name, or from the files the reports name, relative
// to the current directory) for what the reports do not carry, such as
// the rows to compare with the matrix.
func Merge(shards []*ShardReport) (*Report, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("no shard reports to merge")
	}
	first := shards[0]
	if first.Summary.Shard == nil {
		return nil, fmt.Errorf("%s is not a shard (it was not run with --shard or TEST_TOTAL_SHARDS)", first.Path)
	}
	total := first.Summary.Shard.Total
	byIndex := map[int]*ShardReport{}
	for _, s := range shards {
		sh := s.Summary.Shard
		switch {
		case sh == nil:
			return nil, fmt.Errorf("%s is not a shard (it was not run with --shard or TEST_TOTAL_SHARDS)", s.Path)
		case sh.Total != total:
			return nil, fmt.Errorf("%s is shard %d/%d, %s of %d shards", s.Path, sh.Index, sh.Total, first.Path, total)
		case !slices.Equal(s.Summary.Suites, first.Summary.Suites):
			return nil, fmt.Errorf("%s ran suites %v, %s ran %v", s.Path, s.Summary.Suites, first.Path, first.Summary.Suites)
		case s.Summary.Filter != first.Summary.Filter:
			return nil, fmt.Errorf("%s ran --run %q, %s ran --run %q", s.Path, s.Summary.Filter, first.Path, first.Summary.Filter)
		case s.Summary.Interrupted:
			return nil, fmt.Errorf("%s was interrupted: run shard %d/%d again", s.Path, sh.Index, total)
		}
		if prev, dup := byIndex[sh.Index]; dup {
			return nil, fmt.Errorf("shard %d/%d is given twice: %s and %s", sh.Index, total, prev.Path, s.Path)
		}
		byIndex[sh.Index] = s
	}
	var missing []string
	for i := 1; i <= total; i++ {
		if byIndex[i] == nil {
			missing = append(missing, fmt.Sprintf("%d/%d", i, total))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("shard %s missing", strings.Join(missing, ", "))
	}

	var suites []*Suite
	for _, name := range first.Summary.Suites {
		src := name
		if f, ok := first.Summary.SuiteFiles[name]; ok {
			src = f
		}
		s, err := Load(src)
		if err != nil {
			return nil, fmt.Errorf("reading suite %s again: %w", name, err)
		}
		suites = append(suites, s)
	}
	var all []*Case
	for _, s := range suites {
		all = append(all, s.Cases...)
	}
	opt := Options{}
	if first.Summary.Filter != "" {
		re, err := regexp.Compile(first.Summary.Filter)
		if err != nil {
			return nil, fmt.Errorf("%s: --run %q: %v", first.Path, first.Summary.Filter, err)
		}
		opt.Filter = re
	}
	// Every shard must hold exactly the negotiations that shard selects.
	records := map[string]NegotiationJSON{}
	shardOf := map[string]*ShardReport{}
	rep := &Report{Suites: suites, Repeat: 1}
	for i := 1; i <= total; i++ {
		s := byIndex[i]
		o := opt
		o.Shard, o.Shards = i, total
		want := map[string]bool{}
		for _, c := range Select(all, o) {
			want[c.ID] = true
		}
		for _, r := range s.Negotiations {
			if !want[r.ID] {
				return nil, fmt.Errorf("%s (shard %d/%d) holds %s, which is not in that shard: the suites changed since", s.Path, i, total, r.ID)
			}
			if _, dup := records[r.ID]; dup {
				return nil, fmt.Errorf("%s (shard %d/%d) holds %s twice", s.Path, i, total, r.ID)
			}
			records[r.ID] = r
			shardOf[r.ID] = s
			delete(want, r.ID)
		}
		if len(want) > 0 {
			var some string
			for id := range want {
				some = id
				break
			}
			return nil, fmt.Errorf("%s (shard %d/%d) lacks %d of its negotiations, such as %s", s.Path, i, total, len(want), some)
		}
		rep.Repeat = max(rep.Repeat, s.Summary.Summary.Repeat)
		rep.Duration = max(rep.Duration, time.Duration(s.Summary.Summary.DurationMS)*time.Millisecond)
	}
	cases := Select(all, opt)
	for _, c := range cases {
		n := negotiationFrom(c, records[c.ID])
		// A transcript path in a shard's report is relative to the
		// shard's directory: the merged report names the file itself,
		// or nothing when it is not there.
		if n.Transcript != "" {
			n.Transcript = filepath.Join(filepath.Dir(shardOf[c.ID].Path), n.Transcript)
			if st, err := os.Stat(n.Transcript); err != nil || !st.Mode().IsRegular() {
				n.Transcript = ""
			}
		}
		rep.Negotiations = append(rep.Negotiations, n)
	}
	rep.Selected = len(cases)
	rep.Filter = first.Summary.Filter
	rep.compareRows(all, cases)
	return rep, nil
}

// CopyTranscripts copies the shards' transcript files that rep links to
// into dir/transcripts and links to the copies, so that the merged
// report in dir links only to files beside it. With dir empty the links
// stay the shards' own files.
func CopyTranscripts(rep *Report, dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := safefile.Dir(dir, "transcripts", 0o755); err != nil {
		return err
	}
	for _, n := range rep.Negotiations {
		if n.Transcript == "" {
			continue
		}
		data, err := safefile.Read(n.Transcript, MaxTranscriptFile, "")
		if err != nil {
			return err
		}
		rel := TranscriptFile(n.Case)
		if err := safefile.Write(filepath.Join(dir, rel), data, 0o644); err != nil {
			return err
		}
		n.Transcript = rel
	}
	return nil
}

// negotiationFrom rebuilds a negotiation from its JSON record: what the
// writers show of it (the transcript stays in its file).
func negotiationFrom(c *Case, r NegotiationJSON) *Negotiation {
	n := &Negotiation{Case: c, Prediction: r.Prediction, Pass: r.Pass, Why: r.Why, Note: r.Note,
		Unstable: r.Unstable, Cancelled: r.Status == "CANCELLED", ServerLog: r.ServerLog, Transcript: r.TranscriptFile}
	if r.Expected != nil {
		n.Expected = *r.Expected
	}
	if r.Explanation != "" || r.Observed.OK() || r.Observed.Failure != nil {
		res := &sim.Result{Outcome: r.Observed, Recovered: r.Recovered, TLS: r.TLS, Offers: r.Offers, StreamIDs: r.StreamIDs,
			Duration: time.Duration(r.DurationMS * float64(time.Millisecond))}
		// "a.test → b.test: …": the domains the negotiation ran under,
		// which a real server's case does not give.
		if head, _, ok := strings.Cut(r.Explanation, ": "); ok {
			res.Initiator, res.Receiver, _ = strings.Cut(head, " → ")
		}
		n.Result = res
	}
	if r.Emulated != nil {
		n.Emulated = &sim.Result{Outcome: *r.Emulated}
	}
	return n
}
