package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"xmppneg/policy/report"
	"xmppneg/policy/safefile"
)

// The writers render a Report as it is: text, JSON, JSON Lines, JUnit
// XML, and HTML (html.go). None of them decides anything.

// Writers are the suite report's writers, one per format, the text
// (table) first as the default, and those of the formats written from
// its Cases (report.CaseFormats: JUnit): the -o values of run, merge and
// federate are these.
var Writers = report.WithCases(
	report.Writer[*Report, Style]{Format: report.Table, Write: func(w io.Writer, r *Report, st Style) error { WriteText(w, r, st); return nil }},
	report.Writer[*Report, Style]{Format: report.JSON, Write: func(w io.Writer, r *Report, _ Style) error { return WriteJSON(w, r) }},
	// The closing summary line: the negotiations went out as they ended
	// (WriteJSONLine).
	report.Writer[*Report, Style]{Format: report.JSONL, Write: func(w io.Writer, r *Report, _ Style) error { return WriteJSONLSummary(w, r) }},
	report.Writer[*Report, Style]{Format: report.HTML, Write: func(w io.Writer, r *Report, _ Style) error { return WriteHTML(w, r) }},
)

// TranscriptFile is the file name of a case's transcript in an output
// directory, relative to it.
func TranscriptFile(c *Case) string {
	return filepath.Join("transcripts", fileSafe.Replace(c.ID)+".txt")
}

var fileSafe = strings.NewReplacer("/", "__", " ", "_")

// LinkTo is the relative URL of the file at the relative path rel, for
// an HTML report beside it: each path segment escaped, so that a name
// with '#' or '?' (a suite's, a partner's) links to its file and not to
// a fragment or a query. A link is never an absolute URL.
func LinkTo(rel string) string {
	if rel == "" {
		return ""
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	link := strings.Join(parts, "/")
	if strings.Contains(parts[0], ":") || strings.HasPrefix(link, "/") {
		link = "./" + link // never read as a scheme or an absolute path
	}
	return link
}

// WriteTranscripts writes one transcript file per negotiation under dir
// and records each path in the negotiation.
func WriteTranscripts(dir string, ns []*Negotiation) error {
	for _, n := range ns {
		if err := WriteTranscript(dir, n); err != nil {
			return err
		}
	}
	return nil
}

// WriteTranscript writes the transcript of n under dir/transcripts and
// records its path in n.
func WriteTranscript(dir string, n *Negotiation) error {
	rel := TranscriptFile(n.Case)
	if _, err := safefile.Dir(dir, "transcripts", 0o755); err != nil {
		return err
	}
	if err := safefile.Write(filepath.Join(dir, rel), []byte(TranscriptText(n)), 0o644); err != nil {
		return err
	}
	n.Transcript = rel
	return nil
}

// TranscriptText is a negotiation's transcript with what it was about:
// the case, both ends, expected and observed, and the XML.
func TranscriptText(n *Negotiation) string {
	c := n.Case
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s\ndeclared at %s\ninitiator: %s\nreceiver:  %s\nexpected:  %s (%s)\nobserved:  %s\nverdict:   %s\n",
		c.ID, c.Name, c.Source, c.Initiator, c.Receiver, n.Expected, c.Expect, n.Observed(), n.Status())
	if n.Why != "" {
		fmt.Fprintf(&b, "why:       %s\n", n.Why)
	}
	if n.Note != "" {
		fmt.Fprintf(&b, "note:      %s\n", n.Note)
	}
	if n.Result != nil {
		fmt.Fprintf(&b, "%s\n", n.Result.Explain())
		if n.Prediction != nil {
			fmt.Fprintf(&b, "oracle: %s\n", strings.Join(n.Prediction.Reasons, "; "))
		}
		fmt.Fprintf(&b, "\n%s", n.Result.TranscriptText())
	}
	if n.ServerLog != "" {
		fmt.Fprintf(&b, "\nend of the server's log:\n%s\n", n.ServerLog)
	}
	return b.String()
}

// Style says how text output looks: colour (on a terminal only) and how
// much it lists.
type Style struct {
	Color bool
	// Verbose lists every negotiation with its failure and transcript;
	// otherwise passing ones are listed only when there are few.
	Verbose bool
	// FailuresOnly lists only the negotiations that did not pass (the
	// console, when the full report goes to a file).
	FailuresOnly bool
}

// Paint wraps text in an ANSI colour when the style has colour.
func (s Style) Paint(color, text string) string {
	if !s.Color {
		return text
	}
	codes := map[string]string{"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
	return "\x1b[" + codes[color] + "m" + text + "\x1b[0m"
}

func (s Style) status(n *Negotiation) string {
	st := n.Status()
	color := map[string]string{"PASS": "green", "DONE": "green", "FAIL": "red", "CANCELLED": "yellow"}[st]
	return s.Paint(color, st)
}

// listAll is how many negotiations a text report lists in full without -v.
const listAll = 200

// WriteText writes one line per negotiation (all when verbose or when
// there are few, else those that did not pass), the rows compared with
// the matrix, and a summary.
func WriteText(w io.Writer, r *Report, st Style) {
	all := (st.Verbose || len(r.Negotiations) <= listAll) && !st.FailuresOnly
	var listed []*Negotiation
	for _, n := range r.Negotiations {
		if all || !n.Pass || n.Cancelled {
			listed = append(listed, n)
		}
	}
	// Widths are computed from the listed lines alone, so that the detail
	// lines under a row cannot break the alignment.
	wStatus, wID, wObs := len("PASS"), len("negotiation"), len("observed")
	for _, n := range listed {
		wStatus, wID, wObs = max(wStatus, len(n.Status())), max(wID, len(n.Case.ID)), max(wObs, len(n.Observed().String()))
	}
	if len(listed) > 0 {
		fmt.Fprintf(w, "%-*s  %-*s  %-*s  %s\n", wStatus, "", wID, "negotiation", wObs, "observed", "expected")
	}
	for _, n := range listed {
		status := st.status(n) + strings.Repeat(" ", wStatus-len(n.Status()))
		fmt.Fprintf(w, "%s  %-*s  %-*s  %s\n", status, wID, n.Case.ID, wObs, n.Observed(), expectedText(n))
		detail := func(label, text string) {
			fmt.Fprintf(w, "%*s  %s: %s\n", wStatus, "", label, text)
		}
		if n.Why != "" && !n.Pass {
			detail("why", n.Why+" ("+n.Case.Source+")")
		}
		if n.Note != "" && (st.Verbose || !n.Pass) {
			detail("note", n.Note)
		}
		if n.Result != nil && !n.Result.Outcome.OK() && (!n.Pass || st.Verbose) {
			detail("failure", n.Result.Outcome.Failure.Message)
		}
		if n.ServerLog != "" {
			detail("server log", "last lines:\n"+indentLines(tail(n.ServerLog, 12), wStatus+6))
		}
		if n.Transcript != "" && (!n.Pass || st.Verbose) {
			detail("transcript", n.Transcript)
		} else if st.Verbose && n.Result != nil {
			detail("transcript", "\n"+indentLines(strings.TrimRight(n.Result.TranscriptText(), "\n"), wStatus+6))
		}
	}
	if !all && !st.FailuresOnly {
		s := r.Summary()
		fmt.Fprintf(w, "(%s not listed; -v lists them)\n", Counted(s.Passed, "passing negotiation"))
	}
	if len(r.Rows) > 0 {
		fmt.Fprintln(w)
		WriteRows(w, r)
	}
	fmt.Fprintln(w)
	WriteSummary(w, r, st)
}

func expectedText(n *Negotiation) string {
	switch n.Case.Expect.Oracle {
	case Predicted:
		return n.Expected.String() + " (oracle)"
	case PredictedOutcome:
		return n.Expected.String() + " (oracle, outcome only)"
	case Unchecked:
		return "-"
	}
	return n.Expected.String()
}

func indentLines(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// WriteSummary writes how many negotiations ran and how they ended, and
// says so when the run was interrupted.
func WriteSummary(w io.Writer, r *Report, st Style) {
	s := r.Summary()
	if r.Interrupted || s.Cancelled > 0 {
		fmt.Fprintln(w, st.Paint("yellow", fmt.Sprintf("interrupted after %d of %s", s.Negotiations, Counted(r.Selected, "negotiation"))))
	}
	runs := Counted(s.Runs, "negotiation")
	if s.Repeat > 1 {
		runs = fmt.Sprintf("%s (%s × %d)", runs, Counted(s.Negotiations, "case"), s.Repeat)
	}
	fmt.Fprintf(w, "%s in %.2f s\n", runs, r.Duration.Seconds())
	line := fmt.Sprintf("Summary: %d passed, %d failed", s.Passed, s.Failed)
	if s.Errors > 0 {
		line += fmt.Sprintf(", %d could not run", s.Errors)
	}
	if s.Unstable > 0 {
		line += fmt.Sprintf(", %d unstable", s.Unstable)
	}
	if s.Cancelled > 0 {
		line += fmt.Sprintf(", %d cancelled", s.Cancelled)
	}
	color := "green"
	if !r.Passed() {
		color = "red"
	}
	fmt.Fprintln(w, st.Paint(color, line))
}

// WriteRows writes the rows compared with the full matrix: documented
// and observed methods side by side, the witnesses of the warnings, and
// the document's inconsistencies with their evidence.
func WriteRows(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tTLS\tSASL\tdialback\tvalid\tdocumented\tobserved\tverdict")
	for _, rc := range r.Rows {
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
	for _, rc := range r.Rows {
		for _, wit := range rc.Witnesses {
			line := "  " + wit.Text(rc.Row)
			if o := wit.Negotiation(); o != nil && o.Transcript != "" {
				line += "\n      transcript: " + o.Transcript
			}
			lines = append(lines, line)
		}
		for _, code := range rc.Unwitnessed {
			lines = append(lines, fmt.Sprintf("  %s [%s]: no partner fails with this row", rc.Row, code))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nDocumented warnings and their witnesses (a partner with which the row fails, and why):")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	if len(r.Inconsistencies) > 0 {
		fmt.Fprintln(w, "\nInconsistencies in the document:")
		for _, e := range r.Inconsistencies {
			fmt.Fprintf(w, "  %s: %s\n", strings.Join(e.Rows, "/"), e.Message)
			if e.Verdict != "" {
				fmt.Fprintf(w, "      %s\n", e.Verdict)
			}
		}
	}
}

// WriteJSON writes the report as one JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	return encodeJSON(w, r, "  ")
}

func encodeJSON(w io.Writer, v any, indent string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", indent)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteJSONLine writes one negotiation as one line of JSON Lines, as
// soon as it is done.
func WriteJSONLine(w io.Writer, n *Negotiation) error {
	rec := Record(n, false)
	rec.Kind = "negotiation"
	return encodeJSON(w, rec, "")
}

// WriteJSONLSummary writes the last line of a JSON Lines report: the
// summary, rows and inconsistencies.
func WriteJSONLSummary(w io.Writer, r *Report) error {
	rec := r.SummaryRecord()
	rec.Kind = "summary"
	return encodeJSON(w, rec, "")
}

// WriteJUnit writes the report as JUnit XML (its Cases).
func WriteJUnit(w io.Writer, r *Report) error { return report.WriteJUnit(w, r.Cases()) }

// Cases is the report as verdicts, as JUnit shows them: a suite per
// scenario suite, a case per negotiation and per compared row, the
// failure message the one-line explanation.
func (r *Report) Cases() report.Cases {
	var suites []report.Suite
	index := map[string]int{}
	add := func(suite string, c report.Case) {
		i, ok := index[suite]
		if !ok {
			i = len(suites)
			index[suite] = i
			suites = append(suites, report.Suite{Name: suite})
		}
		suites[i].Cases = append(suites[i].Cases, c)
		suites[i].Elapsed += c.Elapsed // summed from the cases
	}
	for _, n := range r.Negotiations {
		c := report.Case{Class: n.Case.Suite, Name: strings.TrimPrefix(n.Case.ID, n.Case.Suite+"/")}
		if n.Result != nil {
			c.Elapsed = n.Result.Duration
			c.Output = n.Result.Explain()
			if n.Transcript != "" {
				c.Output += "\ntranscript: " + n.Transcript
			}
		}
		switch {
		case n.Cancelled:
			c.Status, c.Message = report.Skipped, n.Why
		case n.Result == nil:
			c.Status, c.Message, c.Type, c.Text = report.Errored, n.Why, "error", n.Case.Source
		case !n.Pass:
			text := fmt.Sprintf("declared at %s\nexpected: %s\nobserved: %s\n", n.Case.Source, n.Expected, n.Observed())
			text += n.Result.Explain() + "\n"
			if n.ServerLog != "" {
				text += "end of the server's log:\n" + n.ServerLog + "\n"
			}
			c.Status, c.Message, c.Type, c.Text = report.Failed, n.Why, "disagreement", text
		}
		add(n.Case.Suite, c)
	}
	// What never started is part of the run that was asked for: skipped,
	// so that tests= is the whole of it.
	for _, c := range r.NotRun {
		add(c.Suite, report.Case{Class: c.Suite, Name: strings.TrimPrefix(c.ID, c.Suite+"/"),
			Status: report.Skipped, Message: "not run: the run was interrupted before it started"})
	}
	for _, rc := range r.Rows {
		c := report.Case{Class: "matrix-rows", Name: rc.Row, Output: fmt.Sprintf("documented %s, observed %s", rc.Documented, rc.Observed)}
		if !rc.Agree {
			c.Status, c.Type = report.Failed, "disagreement"
			c.Message = fmt.Sprintf("%s: documented %s, observed %s: %s", rc.Row, rc.Documented.Names(), rc.Observed.Names(), rc.Why)
		}
		add("matrix-rows", c)
	}
	return report.Cases{Suites: suites, Elapsed: r.Duration}
}
