// Package junit is the JUnit XML that CI systems read: its elements and
// one writer, shared by every report of xmppneg that has a JUnit form
// (suite runs, partner verdicts, probes).
package junit

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"time"
)

// Failure is a test case's <failure/> or <error/>.
type Failure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Skipped marks a test case that did not run to its end.
type Skipped struct {
	Message string `xml:"message,attr"`
}

// Case is one <testcase/>.
type Case struct {
	Classname string   `xml:"classname,attr"`
	Name      string   `xml:"name,attr"`
	Time      string   `xml:"time,attr"`
	Failure   *Failure `xml:"failure,omitempty"`
	Error     *Failure `xml:"error,omitempty"`
	Skipped   *Skipped `xml:"skipped,omitempty"`
	SystemOut string   `xml:"system-out,omitempty"`
}

// Suite is one <testsuite/>; Add keeps its counts.
type Suite struct {
	XMLName  xml.Name `xml:"testsuite"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     string   `xml:"time,attr"`
	Cases    []Case   `xml:"testcase"`
}

// Add appends c and counts it as a test, and as a failure, error or
// skipped one when it is.
func (s *Suite) Add(c Case) {
	s.Cases = append(s.Cases, c)
	s.Tests++
	switch {
	case c.Failure != nil:
		s.Failures++
	case c.Error != nil:
		s.Errors++
	case c.Skipped != nil:
		s.Skipped++
	}
}

// Suites is a <testsuites/> document; Add sums its suites' counts.
type Suites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Time     string   `xml:"time,attr"`
	Suites   []*Suite `xml:"testsuite"`
}

// Add appends s and adds its counts to the document's.
func (d *Suites) Add(s *Suite) {
	d.Suites = append(d.Suites, s)
	d.Tests += s.Tests
	d.Failures += s.Failures
	d.Errors += s.Errors
	d.Skipped += s.Skipped
}

// Seconds formats d in seconds with at most 6 decimals, as JUnit readers
// expect.
func Seconds(d time.Duration) string {
	return strconv.FormatFloat(math.Round(d.Seconds()*1e6)/1e6, 'f', -1, 64)
}

// Write writes doc (a *Suites or a *Suite) as an indented XML document.
func Write(w io.Writer, doc any) error {
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
