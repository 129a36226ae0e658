package scenarios

import (
	"encoding/json"
	"strconv"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
)

// Report is the whole of a run: every negotiation with its verdict, the
// rows of the documented matrix compared with what the negotiations
// achieved, and the document's inconsistencies with their evidence. It
// is computed once; every writer renders it as it is.
type Report struct {
	Suites          []*Suite
	Negotiations    []*Negotiation
	Rows            []RowCheck
	Inconsistencies []Evidence
	Duration        time.Duration
	// Repeat is how many times each negotiation ran.
	Repeat int
	// Selected is how many cases the filter and shard left to run.
	Selected int
	// Interrupted is set when the run was stopped before its end, and
	// NotRun lists the selected cases that never started.
	Interrupted bool
	NotRun      []*Case
	// InlineTranscripts puts every transcript in the JSON report itself
	// (for a handful of negotiations; runs write transcript files).
	InlineTranscripts bool
	// Shard of Shards is the part of the suites this report ran (both 0
	// when it ran them whole), and Filter the --run expression, if any:
	// what Merge needs to check that shards add up.
	Shard, Shards int
	Filter        string
}

// Summary counts what a report holds.
type Summary struct {
	// Negotiations is how many ended (each counted once, whatever
	// Repeat), Selected how many were to run.
	Negotiations int `json:"negotiations"`
	Selected     int `json:"selected"`
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	// Cancelled ended because the run was interrupted: neither passed nor
	// failed. Errors could not be run at all (an endpoint or server that
	// did not start).
	Cancelled int `json:"cancelled"`
	Errors    int `json:"errors"`
	Unstable  int `json:"unstable"`
	// Runs is Negotiations times Repeat: how many negotiations took place.
	Runs       int   `json:"runs"`
	Repeat     int   `json:"repeat"`
	RowsAgree  int   `json:"rows_agree"`
	Rows       int   `json:"rows"`
	DurationMS int64 `json:"duration_ms"`
}

// Summary counts the report's negotiations and rows.
func (r *Report) Summary() Summary {
	s := Summary{Selected: r.Selected, Repeat: max(r.Repeat, 1), Rows: len(r.Rows), DurationMS: r.Duration.Milliseconds()}
	for _, n := range r.Negotiations {
		switch {
		case n.Cancelled:
			s.Cancelled++
			continue
		case n.Result == nil:
			s.Errors++
		case n.Pass:
			s.Passed++
		default:
			s.Failed++
		}
		s.Negotiations++
		if len(n.Unstable) > 0 {
			s.Unstable++
		}
	}
	s.Runs = s.Negotiations * s.Repeat
	for _, rc := range r.Rows {
		if rc.Agree {
			s.RowsAgree++
		}
	}
	return s
}

// Complete reports whether every selected negotiation ran to its end.
func (r *Report) Complete() bool {
	s := r.Summary()
	return !r.Interrupted && s.Negotiations == r.Selected
}

// Passed reports whether every negotiation met its expectation, every
// row compared with the matrix agreed, and nothing was left out.
func (r *Report) Passed() bool {
	s := r.Summary()
	return r.Complete() && s.Failed == 0 && s.Errors == 0 && s.RowsAgree == s.Rows
}

// SuiteNames lists the names of the report's suites.
func (r *Report) SuiteNames() []string {
	names := []string{}
	for _, s := range r.Suites {
		names = append(names, s.Name)
	}
	return names
}

// endpointJSON is an endpoint as reports show it.
type endpointJSON struct {
	Domain   string `json:"domain"`
	Settings string `json:"settings"`
	Server   string `json:"server,omitempty"`
	Knobs    string `json:"server_settings,omitempty"`
}

func endpointRecord(e Endpoint) endpointJSON {
	j := endpointJSON{Domain: e.Domain, Settings: e.Settings.String()}
	if e.Server != nil {
		j.Server, j.Knobs = e.Server.Kind(), e.Server.String()
	}
	return j
}

// NegotiationJSON is one negotiation as every JSON report shows it. The
// same field names mean the same things in verify, run and negotiate:
// "outcome" is a method id or "failed"; "observed" and "expected" are
// outcomes with their text.
type NegotiationJSON struct {
	Kind      string           `json:"kind,omitempty"`
	ID        string           `json:"id"`
	Suite     string           `json:"suite"`
	Name      string           `json:"name"`
	Source    string           `json:"source"`
	Initiator endpointJSON     `json:"initiator"`
	Receiver  endpointJSON     `json:"receiver"`
	Status    string           `json:"status"`
	Pass      bool             `json:"pass"`
	Outcome   string           `json:"outcome"`
	Failure   *outcome.Failure `json:"failure"`
	Observed  outcome.Outcome  `json:"observed"`
	// Emulated is, with a real server, what the engine playing the
	// server's profile came to.
	Emulated    *outcome.Outcome   `json:"emulated,omitempty"`
	Expectation string             `json:"expectation"`
	Expected    *outcome.Outcome   `json:"expected"`
	Why         string             `json:"why,omitempty"`
	Note        string             `json:"note,omitempty"`
	Explanation string             `json:"explanation,omitempty"`
	Recovered   []outcome.Failure  `json:"recovered"`
	Prediction  *policy.Prediction `json:"prediction,omitempty"`
	Unstable    []string           `json:"unstable,omitempty"`
	TLS         *sim.TLSInfo       `json:"tls"`
	Offers      []sim.Offer        `json:"offers"`
	StreamIDs   []string           `json:"stream_ids"`
	DurationMS  float64            `json:"duration_ms"`
	Sweep       string             `json:"sweep,omitempty"`
	Row         string             `json:"row,omitempty"`
	Partner     string             `json:"partner,omitempty"`
	PartnerCert string             `json:"partner_cert,omitempty"`
	Refuse      string             `json:"refuse,omitempty"`
	Direction   string             `json:"direction,omitempty"`
	ServerLog   string             `json:"server_log,omitempty"`
	// TranscriptFile is the path of the transcript, when files were
	// written; Transcript the transcript itself, when inline.
	TranscriptFile string      `json:"transcript_file,omitempty"`
	Transcript     []sim.Entry `json:"transcript,omitempty"`
}

// Record is the JSON record of one negotiation of the report.
func (r *Report) Record(n *Negotiation) NegotiationJSON { return Record(n, r.InlineTranscripts) }

// Record is the JSON record of one negotiation, with its transcript in
// it when inline is set.
func Record(n *Negotiation, inline bool) NegotiationJSON {
	c := n.Case
	j := NegotiationJSON{ID: c.ID, Suite: c.Suite, Name: c.Name, Source: c.Source,
		Initiator: endpointRecord(c.Initiator), Receiver: endpointRecord(c.Receiver),
		Status: n.Status(), Pass: n.Pass && !n.Cancelled, Observed: n.Observed(), Expectation: c.Expect.String(),
		Why: n.Why, Note: n.Note, Recovered: []outcome.Failure{}, Prediction: n.Prediction, Unstable: n.Unstable,
		Offers: []sim.Offer{}, StreamIDs: []string{}, Sweep: c.Sweep, Row: c.Row, Partner: c.Partner,
		PartnerCert: c.PartnerCert, Refuse: c.Refuse, ServerLog: n.ServerLog, TranscriptFile: n.Transcript}
	j.Outcome, j.Failure = j.Observed.ID(), j.Observed.Failure
	if c.Expect.Oracle != Unchecked {
		j.Expected = &n.Expected
	}
	switch {
	case c.Direction != "":
		j.Direction = c.Direction
	case c.Sweep != "":
		j.Direction = direction(c)
	}
	if n.Emulated != nil {
		j.Emulated = &n.Emulated.Outcome
	}
	if r := n.Result; r != nil {
		j.Explanation = r.Explain()
		j.Recovered = append(j.Recovered, r.Recovered...)
		j.TLS, j.DurationMS = r.TLS, float64(r.Duration.Microseconds())/1000
		j.Offers = append(j.Offers, r.Offers...)
		j.StreamIDs = append(j.StreamIDs, r.StreamIDs...)
	}
	if inline && n.Result != nil {
		j.Transcript = append([]sim.Entry{}, n.Result.Transcript...)
	}
	return j
}

// direction names who initiated a sweep's negotiation.
func direction(c *Case) string {
	if c.Direction != "" {
		return c.Direction
	}
	_, real := c.real()
	switch {
	case real && c.RowInitiates:
		return "server-initiates"
	case real:
		return "harness-initiates"
	case c.RowInitiates:
		return "row-initiates"
	}
	return "partner-initiates"
}

// SummaryJSON is the report without its negotiations: the last line of
// a JSON Lines report, and the head of a JSON one.
type SummaryJSON struct {
	Kind            string     `json:"kind,omitempty"`
	Suites          []string   `json:"suites"`
	OK              bool       `json:"ok"`
	Interrupted     bool       `json:"interrupted"`
	Summary         Summary    `json:"summary"`
	Rows            []RowCheck `json:"rows,omitempty"`
	Inconsistencies []Evidence `json:"inconsistencies,omitempty"`
	// Shard is the part of the suites the report ran, when sharded;
	// Filter the --run expression; SuiteFiles where the suites that are
	// not shipped were read from.
	Shard      *ShardJSON        `json:"shard,omitempty"`
	Filter     string            `json:"filter,omitempty"`
	SuiteFiles map[string]string `json:"suite_files,omitempty"`
}

// ShardJSON is one part of a sharded run: the Index-th (from 1) of Total.
type ShardJSON struct {
	Index int `json:"index"`
	Total int `json:"total"`
}

// SummaryRecord is the report's summary as JSON reports show it.
func (r *Report) SummaryRecord() SummaryJSON {
	j := SummaryJSON{Suites: r.SuiteNames(), OK: r.Passed(), Interrupted: r.Interrupted, Summary: r.Summary(),
		Rows: r.Rows, Inconsistencies: r.Inconsistencies, Filter: r.Filter}
	if r.Shards > 1 {
		j.Shard = &ShardJSON{Index: r.Shard, Total: r.Shards}
	}
	for _, s := range r.Suites {
		if !isShipped(s.Name) {
			if j.SuiteFiles == nil {
				j.SuiteFiles = map[string]string{}
			}
			j.SuiteFiles[s.Name] = s.File
		}
	}
	return j
}

// isShipped reports whether name is a suite shipped in the binary.
func isShipped(name string) bool {
	for _, s := range Suites() {
		if s == name {
			return true
		}
	}
	return false
}

// MarshalJSON writes the report as one JSON document: the summary's
// fields and "negotiations", a list of records.
func (r *Report) MarshalJSON() ([]byte, error) {
	records := make([]NegotiationJSON, 0, len(r.Negotiations))
	for _, n := range r.Negotiations {
		records = append(records, r.Record(n))
	}
	return json.Marshal(struct {
		SummaryJSON
		Negotiations []NegotiationJSON `json:"negotiations"`
	}{r.SummaryRecord(), records})
}

// Counted says "1 negotiation" or "3 negotiations".
func Counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
