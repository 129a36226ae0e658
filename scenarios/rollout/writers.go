package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"xmppneg/policy/outcome"
	"xmppneg/policy/printable"
	"xmppneg/policy/report"
)

// Style is what the text and JSON reports take: every negotiation or
// only those that changed, and how text is coloured.
type Style struct {
	All   bool
	Paint func(color, s string) string
}

// Writers are the diff report's writers, one per format, text first as
// the default: the -o values of diff.
var Writers = report.WithCases(
	report.Writer[*Report, Style]{Format: report.Text, Write: func(w io.Writer, r *Report, o Style) error { WriteText(w, r, o.Paint, o.All); return nil }},
	report.Writer[*Report, Style]{Format: report.JSON, Write: func(w io.Writer, r *Report, o Style) error { return WriteJSON(w, r, o.All) }},
)

const absentWhy = "not in this version"

// text is how an outcome reads in a table.
func text(o outcome.Outcome, why string) string {
	switch {
	case why == absentWhy:
		return "(absent)"
	case o.OK():
		return o.Method.Name()
	}
	return o.String()
}

// MarshalJSON writes a result with its outcomes as ids and text.
func (r *Result) MarshalJSON() ([]byte, error) {
	type side struct {
		Outcome string           `json:"outcome"`
		Failure *outcome.Failure `json:"failure"`
		Text    string           `json:"text"`
	}
	mk := func(o outcome.Outcome, why string) side {
		s := side{Outcome: o.ID(), Text: text(o, why)}
		if why == absentWhy {
			s.Outcome = "absent"
		} else if o.Failure != nil {
			f := *o.Failure
			f.Elapsed = 0
			s.Failure = &f
		}
		return s
	}
	type plain Result
	return json.Marshal(struct {
		*plain
		Before side `json:"before"`
		After  side `json:"after"`
	}{(*plain)(r), mk(r.Before, r.BeforeWhy), mk(r.After, r.AfterWhy)})
}

// WriteJSON writes the report as one document: what was compared, every
// subject's settings before and after, every negotiation that changed
// (all of them with all), and the counts.
func WriteJSON(w io.Writer, r *Report, all bool) error {
	results := []*Result{}
	for _, x := range r.Results {
		if all || x.Kind != Unchanged {
			results = append(results, x)
		}
	}
	subjects := r.Subjects
	if subjects == nil {
		subjects = []SubjectReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Before       string          `json:"before"`
		After        string          `json:"after"`
		Subjects     []SubjectReport `json:"subjects"`
		Negotiations []*Result       `json:"negotiations"`
		Summary      Summary         `json:"summary"`
		OK           bool            `json:"ok"`
	}{r.Before, r.After, subjects, results, r.Summary, r.Summary.Regressions == 0})
}

// WriteText writes what a person reads: the settings that changed, every
// negotiation whose outcome changed (regressions first), and the counts.
func WriteText(w io.Writer, r *Report, paint func(color, s string) string, all bool) {
	if paint == nil {
		paint = func(_, s string) string { return s }
	}
	fmt.Fprintf(w, "before: %s\nafter:  %s\n\n", printable.String(r.Before), printable.String(r.After))
	for _, s := range r.Subjects {
		switch {
		case s.Before == "":
			fmt.Fprintf(w, "%s: added: %s\n", printable.String(s.Name), s.After)
		case s.After == "":
			fmt.Fprintf(w, "%s: %s\n", printable.String(s.Name), paint("red", "removed"))
		case s.Before == s.After:
			fmt.Fprintf(w, "%s: settings unchanged (%s)\n", printable.String(s.Name), s.Before)
		default:
			fmt.Fprintf(w, "%s:\n  before: %s\n  after:  %s\n", printable.String(s.Name), s.Before, s.After)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tours\tpartner\tdirection\tbefore\tafter")
	for _, kind := range []Kind{Regression, Changed, Improvement, Unchanged} {
		for _, x := range r.Results {
			if x.Kind != kind || (kind == Unchanged && !all) {
				continue
			}
			label := map[Kind]string{Regression: paint("red", "REGRESSION"), Improvement: paint("green", "better"), Changed: paint("yellow", "changed"), Unchanged: "same"}[kind]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", label, printable.String(x.Subject), printable.String(x.Partner), x.Direction,
				text(x.Before, x.BeforeWhy), text(x.After, x.AfterWhy))
		}
	}
	tw.Flush()
	if r.Summary.Changed == 0 {
		fmt.Fprintln(w, "(no negotiation changes)")
	}
	for _, x := range r.Results {
		if x.Kind == Regression {
			fmt.Fprintf(w, "\n%s %s, %s:\n  before: %s\n  after:  %s\n", paint("red", "regression:"), printable.String(x.Subject), printable.String(x.Partner)+" "+string(x.Direction),
				printable.String(x.BeforeWhy), printable.String(x.AfterWhy))
		}
	}
	verdict := paint("green", "OK")
	if r.Summary.Regressions > 0 {
		verdict = paint("red", "FAIL")
	}
	fmt.Fprintf(w, "\n%s: %d negotiations with each version, %d changed: %d regressions, %d improvements (%.1f s)\n",
		verdict, r.Summary.Negotiations, r.Summary.Changed, r.Summary.Regressions, r.Summary.Improvements, r.Duration.Seconds())
}

// WriteJUnit writes the report as JUnit XML (its Cases).
func WriteJUnit(w io.Writer, r *Report) error { return report.WriteJUnit(w, r.Cases()) }

// Cases is one case per negotiation; a regression is a failure, so a CI
// job fails on it.
func (r *Report) Cases() report.Cases {
	s := report.Suite{Name: "diff"}
	for _, x := range r.Results {
		c := report.Case{Class: "diff." + x.Subject, Name: x.Partner + " " + string(x.Direction),
			Output: fmt.Sprintf("before: %s\nafter: %s\n", x.BeforeWhy, x.AfterWhy)}
		if x.Kind == Regression {
			c.Status, c.Type = report.Failed, "regression"
			c.Message = fmt.Sprintf("%s → %s", text(x.Before, x.BeforeWhy), text(x.After, x.AfterWhy))
			c.Text = strings.TrimSpace(x.AfterWhy)
		}
		s.Cases = append(s.Cases, c)
	}
	return report.Cases{Suites: []report.Suite{s}, Elapsed: r.Duration, Single: true}
}
