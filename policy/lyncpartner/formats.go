package lyncpartner

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// parseFormatList reads Get-CsXmppAllowedPartner | Format-List: records
// separated by blank lines, "Name : value" a line, a long value wrapped
// onto indented lines, lists as "{a, b}".
func parseFormatList(file string, data []byte) ([]Entry, []Note, error) {
	var records []*record
	var cur *record
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			// The wrapped tail of the previous value.
			if cur == nil || len(cur.props) == 0 {
				return nil, nil, &Error{File: file, Line: n, Err: fmt.Errorf("an indented line that continues no property")}
			}
			// Kept apart and joined once at the end: adding each
			// line to the value would copy it again for every line
			// (quadratic in a long wrapped value).
			last := &cur.props[len(cur.props)-1]
			last.wrapped = append(last.wrapped, strings.TrimSpace(line))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, nil, &Error{File: file, Line: n, Err: fmt.Errorf("%q is not a \"Name : value\" line of Format-List", line)}
		}
		if cur != nil && strings.EqualFold(name, "Identity") {
			for _, p := range cur.props {
				if strings.EqualFold(p.name, "Identity") {
					cur = nil // a new record without a blank line before it
					break
				}
			}
		}
		if cur == nil {
			cur = &record{file: file, start: n}
			records = append(records, cur)
		}
		cur.props = append(cur.props, prop{name: name, value: strings.TrimSpace(value), line: n})
	}
	for _, r := range records {
		for i := range r.props {
			if p := &r.props[i]; len(p.wrapped) > 0 {
				p.value = strings.Join(append([]string{p.value}, p.wrapped...), " ")
				p.wrapped = nil
			}
		}
	}
	return entries(records, false)
}

func entries(records []*record, defaults bool) ([]Entry, []Note, error) {
	var out []Entry
	var notes []Note
	for _, r := range records {
		e, n, err := r.entry(defaults)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, e)
		notes = append(notes, n...)
	}
	return out, notes, nil
}

// parseCSV reads Export-Csv: an optional "#TYPE …" line, a header of
// property names, then one entry a row, all quoted.
func parseCSV(file string, data []byte) ([]Entry, []Note, error) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	skipped := 0
	for skipped < len(lines) {
		l := bytes.TrimSpace(lines[skipped])
		if len(l) != 0 && !bytes.HasPrefix(l, []byte("#")) {
			break
		}
		skipped++
	}
	r := csv.NewReader(bytes.NewReader(bytes.Join(lines[skipped:], nil)))
	r.FieldsPerRecord = 0
	header, err := r.Read()
	if err != nil {
		return nil, nil, &Error{File: file, Line: skipped + 1, Err: fmt.Errorf("reading the header: %w", csvErr(err))}
	}
	var records []*record
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, nil, &Error{File: file, Line: pe.StartLine + skipped, Err: csvErr(err)}
			}
			return nil, nil, &Error{File: file, Err: err}
		}
		line, _ := r.FieldPos(0)
		rec := &record{file: file, start: line + skipped}
		for i, v := range row {
			rec.props = append(rec.props, prop{name: strings.TrimSpace(header[i]), value: v, line: line + skipped})
		}
		records = append(records, rec)
	}
	return entries(records, false)
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("this row has a different number of values than the header")
		}
		return pe.Err
	}
	return err
}

// parseJSON reads ConvertTo-Json: one object or an array of them, enums
// as their names (-EnumsAsStrings).
func parseJSON(file string, data []byte) ([]Entry, []Note, error) {
	lineAt := func(off int64) int { return bytes.Count(data[:min(int(off), len(data))], []byte("\n")) + 1 }
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	jsonErr := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &Error{File: file, Line: lineAt(se.Offset), Err: fmt.Errorf("not valid JSON: %v", se)}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &Error{File: file, Line: lineAt(int64(len(data))), Err: fmt.Errorf("not valid JSON: it ends too early")}
		}
		return &Error{File: file, Line: lineAt(dec.InputOffset()), Err: fmt.Errorf("not valid JSON: %v", err)}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, jsonErr(err)
	}
	var records []*record
	readObject := func() error {
		rec := &record{file: file, start: lineAt(dec.InputOffset())}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return jsonErr(err)
			}
			name, _ := kt.(string)
			line := lineAt(dec.InputOffset())
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return jsonErr(err)
			}
			p, err := jsonProp(name, raw)
			if err != nil {
				return &Error{File: file, Line: line, Property: canonical(name), Err: err}
			}
			p.line = line
			rec.props = append(rec.props, p)
		}
		if _, err := dec.Token(); err != nil { // }
			return jsonErr(err)
		}
		records = append(records, rec)
		return nil
	}
	switch tok {
	case json.Delim('{'):
		if err := readObject(); err != nil {
			return nil, nil, err
		}
	case json.Delim('['):
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return nil, nil, jsonErr(err)
			}
			if t != json.Delim('{') {
				return nil, nil, &Error{File: file, Line: lineAt(dec.InputOffset()), Err: fmt.Errorf("expected an object for each partner, found %v", t)}
			}
			if err := readObject(); err != nil {
				return nil, nil, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, nil, jsonErr(err)
		}
	default:
		return nil, nil, &Error{File: file, Line: 1, Err: fmt.Errorf("expected a partner object or an array of them")}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, &Error{File: file, Line: lineAt(dec.InputOffset()), Err: fmt.Errorf("unexpected data after the partner list")}
	}
	return entries(records, false)
}

// jsonProp turns one JSON value into a property's text.
func jsonProp(name string, raw json.RawMessage) (prop, error) {
	p := prop{name: name}
	if !known(name) {
		// Not a partner setting: kept only to be noted as ignored.
		p.value = string(raw)
		return p, nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return p, err
	}
	switch x := v.(type) {
	case nil:
	case string:
		p.value = x
	case bool:
		p.value = fmt.Sprint(x)
	case json.Number:
		switch canonical(name) {
		case "TlsNegotiation", "SaslNegotiation", "PartnerType":
			return p, fmt.Errorf("is the number %s: ConvertTo-Json wrote the enum's number, not its name; export with names "+
				"(PowerShell 7: ConvertTo-Json -EnumsAsStrings; Windows PowerShell: Select-Object @{n='%s';e={\"$($_.%s)\"}},*)", x, canonical(name), canonical(name))
		}
		p.value = x.String()
	case []any:
		p.isList = true
		for _, item := range x {
			s, ok := item.(string)
			if !ok {
				return p, fmt.Errorf("a list of domain names was expected, found %v", item)
			}
			p.list = append(p.list, s)
		}
	case map[string]any:
		// Identity as an object (XdsGlobalRelativeIdentity): its text.
		for _, k := range []string{"Value", "Name", "Id", "InstanceId"} {
			if s, ok := x[k].(string); ok && canonical(name) == "Identity" {
				p.value = s
				return p, nil
			}
		}
		if canonical(name) == "AdditionalDomains" && len(x) == 0 {
			p.isList = true
			return p, nil
		}
		return p, fmt.Errorf("is an object; export it as text (Select-Object @{n='%s';e={\"$($_.%s)\"}},*)", canonical(name), canonical(name))
	}
	return p, nil
}
