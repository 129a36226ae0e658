package report

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(s string) func(io.Writer, int, bool) error {
	return func(w io.Writer, r int, _ bool) error { _, err := fmt.Fprintf(w, "%s %d", s, r); return err }
}

func TestWriters(t *testing.T) {
	// Declared out of order: the default stays first, the rest follow
	// Formats, so that every -o lists formats alike.
	ws := Writers[int, bool]{{Text, write("text")}, {HTML, write("html")}, {JSON, write("json")}, {JUnit, write("junit")}}
	assert.Equal(t, []string{"text", "json", "junit", "html"}, ws.Names())
	assert.Equal(t, "text|json|junit|html", ws.Usage())
	assert.Equal(t, []string{"text", "junit", "html"}, ws.Without(JSON).Names())
	assert.Equal(t, []string{"table", "json", "junit", "html"}, ws.As(Text, Table).Names())
	assert.True(t, ws.Has("junit"))
	assert.False(t, ws.Has("jsonl"))

	var buf bytes.Buffer
	require.NoError(t, ws.Write(&buf, "junit", 7, false))
	assert.Equal(t, "junit 7", buf.String())
	assert.EqualError(t, ws.Write(&buf, "csv", 7, false), `unknown format "csv": accepted formats are text, json, junit, html`)
}

func TestExt(t *testing.T) {
	for f, ext := range map[Format]string{Table: "txt", Text: "txt", "": "txt", JSON: "json", JSONL: "jsonl", JUnit: "xml", HTML: "html", Markdown: "md"} {
		assert.Equal(t, ext, f.Ext(), "%q", f)
	}
	for _, f := range Formats {
		assert.NotEmpty(t, f.Ext(), "every format has an extension")
	}
}

func TestWriteJUnit(t *testing.T) {
	cs := Cases{Elapsed: 1500 * time.Millisecond, Suites: []Suite{{Name: "s", Elapsed: time.Second, Cases: []Case{
		{Class: "s", Name: "ok", Elapsed: time.Second, Output: "fine"},
		{Class: "s", Name: "bad", Status: Failed, Message: "why", Type: "disagreement", Text: "detail"},
		{Class: "s", Name: "broken", Status: Errored, Message: "no result", Type: "error"},
		{Class: "s", Name: "cut", Status: Skipped, Message: "interrupted"},
	}}}}
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, cs))
	out := buf.String()
	assert.Contains(t, out, `<testsuites tests="4" failures="1" errors="1" skipped="1" time="1.5">`)
	assert.Contains(t, out, `<testsuite name="s" tests="4" failures="1" errors="1" skipped="1" time="1">`)
	assert.Contains(t, out, `<failure message="why" type="disagreement">detail</failure>`)
	assert.Contains(t, out, `<error message="no result" type="error"></error>`)
	assert.Contains(t, out, `<skipped message="interrupted"></skipped>`)
	assert.Contains(t, out, `<system-out>fine</system-out>`)

	// A report that is one suite is that <testsuite>, with the report's time.
	cs.Single = true
	buf.Reset()
	require.NoError(t, WriteJUnit(&buf, cs))
	assert.NotContains(t, buf.String(), "<testsuites")
	assert.Contains(t, buf.String(), `<testsuite name="s" tests="4" failures="1" errors="1" skipped="1" time="1.5">`)
}
