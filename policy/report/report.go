// Package report is the one list of xmppneg's report formats (the values
// of -o) and the table through which each kind of report (a suite run, a
// partner list, a probe, a diff) names its writer for each: the command
// line's -o values, its help and docs/cli.md all come from these tables,
// and a command picks a writer by looking it up, never by a switch.
//
// It imports nothing of xmppneg, so that every layer may use it. Writers
// compute nothing: what they print is in the report they are given.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// A Format is one value of -o.
type Format string

// The formats, in the order every -o lists them.
const (
	Table    Format = "table"    // the suite report's text: a line per negotiation, then the summary
	Text     Format = "text"     // text for a person at a terminal
	JSON     Format = "json"     // one JSON document
	JSONL    Format = "jsonl"    // JSON Lines, one record as each result is known
	JUnit    Format = "junit"    // JUnit XML, as CI systems read it
	HTML     Format = "html"     // one page a person reads at a glance
	Markdown Format = "markdown" // a Markdown document
)

// Formats lists every Format in the order -o lists them.
var Formats = []Format{Table, Text, JSON, JSONL, JUnit, HTML, Markdown}

// Ext is the extension of a report file written in f (in an --out
// directory): xml for JUnit, txt for text, else the format's name.
func (f Format) Ext() string {
	switch f {
	case Table, Text, "":
		return "txt"
	case JUnit:
		return "xml"
	case Markdown:
		return "md"
	}
	return string(f)
}

// A Writer renders one kind of report, R, with the options O that its
// text formats take (colour, verbosity, language), in one Format.
type Writer[R, O any] struct {
	Format Format
	Write  func(w io.Writer, r R, o O) error
}

// Writers is a kind of report's writers, one per format it has; the
// first is the default of -o.
type Writers[R, O any] []Writer[R, O]

// Names is the formats of ws, in the order of Formats (the default
// first), as -o's help and usage line list them.
func (ws Writers[R, O]) Names() []string { return Names(ws.Formats()...) }

// Names is the names of fs, as -o's help lists them.
func Names(fs ...Format) []string {
	var names []string
	for _, f := range fs {
		names = append(names, string(f))
	}
	return names
}

// Usage is the formats for a usage line: "table|json|junit".
func (ws Writers[R, O]) Usage() string { return strings.Join(ws.Names(), "|") }

// Has reports whether ws has a writer for the format named name.
func (ws Writers[R, O]) Has(name string) bool {
	_, ok := ws.lookup(name)
	return ok
}

// Without is ws but the writers of formats fs, for a command that cannot
// offer them (merge has no JSON Lines: its negotiations were written
// already).
func (ws Writers[R, O]) Without(fs ...Format) Writers[R, O] {
	var out Writers[R, O]
	for _, w := range ws {
		if !slices.Contains(fs, w.Format) {
			out = append(out, w)
		}
	}
	return out
}

// Write renders r in the format named name.
func (ws Writers[R, O]) Write(w io.Writer, name string, r R, o O) error {
	wr, ok := ws.lookup(name)
	if !ok {
		return fmt.Errorf("unknown format %q: accepted formats are %s", name, strings.Join(ws.Names(), ", "))
	}
	return wr.Write(w, r, o)
}

func (ws Writers[R, O]) lookup(name string) (Writer[R, O], bool) {
	for _, w := range ws {
		if string(w.Format) == name {
			return w, true
		}
	}
	return Writer[R, O]{}, false
}

// sorted is ws with the default first, then the others in the order of
// Formats.
func (ws Writers[R, O]) sorted() Writers[R, O] {
	if len(ws) == 0 {
		return nil
	}
	rest := slices.Clone(ws[1:])
	slices.SortStableFunc(rest, func(a, b Writer[R, O]) int {
		return slices.Index(Formats, a.Format) - slices.Index(Formats, b.Format)
	})
	return append(Writers[R, O]{ws[0]}, rest...)
}

// Ext is the extension of a report file of the format named name.
func Ext(name string) string { return Format(name).Ext() }

// As is ws with the writer of format f offered as format as instead, in
// first place when it was: federate's text is the suite report's table.
func (ws Writers[R, O]) As(f, as Format) Writers[R, O] {
	out := slices.Clone(ws)
	for i := range out {
		if out[i].Format == f {
			out[i].Format = as
		}
	}
	return out
}

// Formats is the formats of ws, in the order Names gives.
func (ws Writers[R, O]) Formats() []Format {
	var fs []Format
	for _, w := range ws.sorted() {
		fs = append(fs, w.Format)
	}
	return fs
}
