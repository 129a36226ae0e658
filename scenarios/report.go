package scenarios

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"xmppneg/policy"
)

// TranscriptFile is the file name of a case's transcript in an output
// directory, relative to it.
func TranscriptFile(c *Case) string {
	return filepath.Join("transcripts", strings.NewReplacer("/", "__", " ", "_").Replace(c.ID)+".txt")
}

// WriteTranscripts writes one transcript file per outcome under dir and
// records each path in the outcome.
func WriteTranscripts(dir string, outcomes []*Outcome) error {
	if err := os.MkdirAll(filepath.Join(dir, "transcripts"), 0o755); err != nil {
		return err
	}
	for _, o := range outcomes {
		rel := TranscriptFile(o.Case)
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n%s\ndeclared at %s\ninitiator: %s %s\nreceiver:  %s %s\nexpected:  %s\nobserved:  %s\n",
			o.Case.ID, o.Case.Name, o.Case.Source, o.Case.Initiator.Domain, o.Case.Initiator.Settings,
			o.Case.Receiver.Domain, o.Case.Receiver.Settings, o.Expected(), o.Observed())
		if o.Result != nil {
			fmt.Fprintf(&b, "%s\n", o.Result.Explain())
			if o.Prediction != nil {
				fmt.Fprintf(&b, "oracle: %s\n", strings.Join(o.Prediction.Reasons, "; "))
			}
			fmt.Fprintf(&b, "\n%s", o.Result.TranscriptText())
		}
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(b.String()), 0o644); err != nil {
			return err
		}
		o.Transcript = rel
	}
	return nil
}

// WriteText writes one line per case (all cases when verbose or when
// there are few, else the ones that did not pass) and a summary line.
func WriteText(w io.Writer, r *Report, verbose bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	all := verbose || len(r.Outcomes) <= 200
	fmt.Fprintln(tw, "\tcase\tobserved\texpected")
	for _, o := range r.Outcomes {
		if o.Pass && !all {
			continue
		}
		status := "PASS"
		if !o.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", status, o.Case.ID, o.Observed(), o.Expected())
		if !o.Pass && o.Why != "" {
			fmt.Fprintf(tw, "\t  why: %s (%s)\n", o.Why, o.Case.Source)
		}
		if o.Result != nil && o.Result.Failure != nil && (!o.Pass || verbose) {
			fmt.Fprintf(tw, "\t  failure: %s\n", o.Result.Failure.Message)
		}
		if o.Transcript != "" && (!o.Pass || verbose) {
			fmt.Fprintf(tw, "\t  transcript: %s\n", o.Transcript)
		}
	}
	tw.Flush()
	if !all {
		fmt.Fprintf(w, "(%d passing cases not listed; -v lists them)\n", countPass(r))
	}
	if len(r.Rows) > 0 {
		fmt.Fprintln(w)
		WriteRows(w, r.Rows)
	}
	passed, failed := r.Counts()
	fmt.Fprintf(w, "\n%d negotiations in %.2f s\n", len(r.Outcomes), r.Duration.Seconds())
	fmt.Fprintf(w, "Summary: %d passed, %d failed\n", passed, failed)
}

func countPass(r *Report) int {
	p, _ := r.Counts()
	return p
}

// WriteRows writes the row comparison with the full matrix: documented
// and observed methods side by side, and the witnesses of the warnings.
func WriteRows(w io.Writer, rows []RowCheck) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tTLS\tSASL\tdialback\tvalid\tdocumented\tobserved\t")
	for _, rc := range rows {
		verdict := "agree"
		if !rc.Agree {
			verdict = "DISAGREE: " + rc.Why
		}
		valid := "valid"
		if !rc.Valid {
			valid = "invalid"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\n", rc.Row, rc.TLS, rc.SASL, rc.Dialback, valid,
			rc.Documented.Names(), rc.Observed.Names(), verdict)
	}
	tw.Flush()
	var lines []string
	for _, rc := range rows {
		for _, wit := range rc.Witnesses {
			dir := "row initiates"
			if !wit.RowInitiates {
				dir = "partner initiates"
			}
			partner := wit.Partner
			if !wit.PartnerValid {
				partner += ", itself invalid"
			}
			line := fmt.Sprintf("  %s [%s]: with partner %s (%s), %s: %s", rc.Row, wit.Warning, partner, wit.PartnerSettings, dir, wit.Failure)
			if o := wit.Outcome(); o != nil && o.Transcript != "" {
				line += "\n      transcript: " + o.Transcript
			}
			lines = append(lines, line)
		}
		for _, wn := range rc.Warnings {
			if !hasWitness(rc, wn.Code) {
				lines = append(lines, fmt.Sprintf("  %s [%s]: no partner fails with this row", rc.Row, wn.Code))
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nDocumented warnings and their witnesses (a partner with which the row fails, and why):")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	if ev := Inconsistencies(rows); len(ev) > 0 {
		fmt.Fprintln(w, "\nInconsistencies in the document:")
		for _, e := range ev {
			fmt.Fprintf(w, "  %s: %s\n", strings.Join(e.Rows, "/"), e.Message)
			if e.Verdict != "" {
				fmt.Fprintf(w, "      %s\n", e.Verdict)
			}
		}
	}
}

func hasWitness(rc RowCheck, code string) bool {
	for _, w := range rc.Witnesses {
		if w.Warning == code {
			return true
		}
	}
	return false
}

// jsonCase is a case as the JSON report shows it.
type jsonCase struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Source      string             `json:"source"`
	Initiator   string             `json:"initiator"`
	Receiver    string             `json:"receiver"`
	Expected    string             `json:"expected"`
	Observed    string             `json:"observed"`
	Pass        bool               `json:"pass"`
	Why         string             `json:"why,omitempty"`
	Explanation string             `json:"explanation,omitempty"`
	Failure     any                `json:"failure"`
	Prediction  *policy.Prediction `json:"prediction,omitempty"`
	Unstable    []string           `json:"unstable,omitempty"`
	Transcript  string             `json:"transcript,omitempty"`
	DurationMS  float64            `json:"duration_ms"`
}

// WriteJSON writes the report as one JSON object.
func WriteJSON(w io.Writer, r *Report) error {
	var names []string
	for _, s := range r.Suites {
		names = append(names, s.Name)
	}
	cases := []jsonCase{}
	for _, o := range r.Outcomes {
		jc := jsonCase{ID: o.Case.ID, Name: o.Case.Name, Source: o.Case.Source,
			Initiator: o.Case.Initiator.Domain + " " + o.Case.Initiator.Settings.String(),
			Receiver:  o.Case.Receiver.Domain + " " + o.Case.Receiver.Settings.String(),
			Expected:  o.Expected(), Observed: o.Observed(), Pass: o.Pass, Why: o.Why, Prediction: o.Prediction,
			Unstable: o.Unstable, Transcript: o.Transcript}
		if o.Result != nil {
			jc.Explanation = o.Result.Explain()
			jc.DurationMS = o.Result.DurationMS
			if o.Result.Failure != nil {
				jc.Failure = o.Result.Failure
			}
		}
		cases = append(cases, jc)
	}
	passed, failed := r.Counts()
	out := map[string]any{
		"suites": names, "cases": cases, "passed": passed, "failed": failed,
		"negotiations": len(r.Outcomes), "duration_ms": r.Duration.Milliseconds(), "ok": r.Passed(),
	}
	if len(r.Rows) > 0 {
		out["rows"] = r.Rows
		out["inconsistencies"] = Inconsistencies(r.Rows)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// WriteJUnit writes the report as JUnit XML: a test suite per scenario
// suite, a test case per negotiation and per compared row.
func WriteJUnit(w io.Writer, r *Report) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Class   string   `xml:"classname,attr"`
		Name    string   `xml:"name,attr"`
		Time    float64  `xml:"time,attr"`
		Failure *failure `xml:"failure,omitempty"`
		Out     string   `xml:"system-out,omitempty"`
	}
	type testsuite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	suites := map[string]*testsuite{}
	var order []string
	get := func(name string) *testsuite {
		if s, ok := suites[name]; ok {
			return s
		}
		suites[name] = &testsuite{Name: name}
		order = append(order, name)
		return suites[name]
	}
	for _, o := range r.Outcomes {
		s := get(o.Case.Suite)
		tc := testcase{Class: o.Case.Suite, Name: o.Case.ID}
		if o.Result != nil {
			tc.Time = o.Result.DurationMS / 1000
			tc.Out = o.Result.Explain()
			if o.Transcript != "" {
				tc.Out += "\ntranscript: " + o.Transcript
			}
		}
		if !o.Pass {
			tc.Failure = &failure{Message: o.Why, Text: o.Case.Source}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	for _, rc := range r.Rows {
		s := get("matrix-rows")
		tc := testcase{Class: "matrix-rows", Name: rc.Row,
			Out: fmt.Sprintf("documented %s, observed %s", rc.Documented, rc.Observed)}
		if !rc.Agree {
			tc.Failure = &failure{Message: rc.Why}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	var doc struct {
		XMLName xml.Name     `xml:"testsuites"`
		Suites  []*testsuite `xml:"testsuite"`
	}
	for _, n := range order {
		doc.Suites = append(doc.Suites, suites[n])
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
