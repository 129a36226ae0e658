package report

import (
	"io"
	"time"

	"xmppneg/policy/junit"
)

// A CaseReport is a report that says what it holds as a list of
// verdicts: every report of xmppneg is one (a suite run, a partner list,
// a probe, a diff). Formats that show verdicts (CaseFormats: JUnit) are
// one writer each over this interface, for every report at once.
type CaseReport interface {
	Cases() Cases
}

// Cases is a report as verdicts: its suites of cases and how long it
// took. Single is a report that is one suite (a partner list, a probe, a
// diff), which JUnit writes as its root <testsuite>.
type Cases struct {
	Suites  []Suite
	Elapsed time.Duration
	Single  bool
}

// Suite is a group of cases, with the time they took.
type Suite struct {
	Name    string
	Elapsed time.Duration
	Cases   []Case
}

// Status is how a case came out.
type Status uint8

// The statuses of a case.
const (
	Passed  Status = iota
	Failed         // the verdict is a failure: Message, Type and Text say why
	Errored        // the case could not be judged: Message, Type and Text say why
	Skipped        // the case did not run to its end: Message says why
)

// Case is one verdict. Output is what it observed, shown beside it
// (JUnit's system-out).
type Case struct {
	Class, Name string
	Elapsed     time.Duration
	Status      Status
	Message     string
	Type        string
	Text        string
	Output      string
}

// CaseFormats are the formats written from a report's Cases, which
// every CaseReport has without a writer of its own.
var CaseFormats = []Format{JUnit}

// caseWriter is the writer of a format in CaseFormats.
func caseWriter(f Format) func(io.Writer, Cases) error {
	switch f {
	case JUnit:
		return WriteJUnit
	}
	return nil
}

// WithCases is a kind of report's writers: its own (the default first),
// and one for each of CaseFormats, over its Cases.
func WithCases[R CaseReport, O any](own ...Writer[R, O]) Writers[R, O] {
	ws := Writers[R, O](own)
	for _, f := range CaseFormats {
		write := caseWriter(f)
		ws = append(ws, Writer[R, O]{Format: f, Write: func(w io.Writer, r R, _ O) error { return write(w, r.Cases()) }})
	}
	return ws
}

// WriteJUnit writes cases as JUnit XML: a <testsuites> document of
// suites, or, for a report that is one suite, that <testsuite>.
func WriteJUnit(w io.Writer, cs Cases) error {
	doc := &junit.Suites{Time: junit.Seconds(cs.Elapsed)}
	for _, s := range cs.Suites {
		ts := &junit.Suite{Name: s.Name, Time: junit.Seconds(s.Elapsed)}
		for _, c := range s.Cases {
			tc := junit.Case{Classname: c.Class, Name: c.Name, Time: junit.Seconds(c.Elapsed), SystemOut: c.Output}
			why := &junit.Failure{Message: c.Message, Type: c.Type, Text: c.Text}
			switch c.Status {
			case Failed:
				tc.Failure = why
			case Errored:
				tc.Error = why
			case Skipped:
				tc.Skipped = &junit.Skipped{Message: c.Message}
			}
			ts.Add(tc)
		}
		doc.Add(ts)
	}
	if cs.Single && len(doc.Suites) == 1 {
		s := doc.Suites[0]
		s.Time = junit.Seconds(cs.Elapsed)
		return junit.Write(w, s)
	}
	return junit.Write(w, doc)
}
