package lyncpartner

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"xmppneg/policy"
	"xmppneg/policy/printable"
)

// cmdletParams are the parameters of New-/Set-CsXmppAllowedPartner that
// set a property, by their names; the others are switches with no effect
// on the entry.
var cmdletParams = []string{"Identity", "Domain", "AdditionalDomains", "PartnerType", "TlsNegotiation", "SaslNegotiation",
	"SupportDialbackNegotiation", "EnableKeepAlive", "ProxyFqdn", "ConnectionLimit", "Description"}

var cmdletSwitches = []string{"Confirm", "Force", "InMemory", "WhatIf", "Verbose", "ErrorAction", "WarningAction"}

// ErrNoValue is the error of a parameter given without a value. Pasted
// into a POSIX shell, -SupportDialbackNegotiation $true loses its value:
// the shell expands $true, a variable it does not have, to nothing.
var ErrNoValue = errors.New("has no value")

// IsCmdlet reports whether s starts with New-CsXmppAllowedPartner or
// Set-CsXmppAllowedPartner.
func IsCmdlet(s string) bool { return cmdletLine.MatchString(s) }

// ParseCmdlet reads one New-CsXmppAllowedPartner line into the policy it
// sets, with the documented defaults for what it leaves out. The
// identity may be left out: the settings do not depend on it.
func ParseCmdlet(line string) (policy.Policy, error) {
	if !IsCmdlet(line) {
		return policy.Policy{}, fmt.Errorf("%q is not a New-CsXmppAllowedPartner line", line)
	}
	words, err := splitWords(line)
	if err != nil {
		return policy.Policy{}, err
	}
	if strings.EqualFold(words[0], "Set-CsXmppAllowedPartner") {
		return policy.Policy{}, fmt.Errorf("a Set-CsXmppAllowedPartner line changes an entry it does not show; give the New-CsXmppAllowedPartner line, or the flags")
	}
	var notes []Note
	args, err := cmdletArgs(words[1:], 1, &notes, "the cmdlet line")
	if err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			err = perr.Err
			if perr.Property != "" {
				// The one thing a single line must say: which parameter.
				err = fmt.Errorf("-%s %w", perr.Property, perr.Err)
			}
		}
		return policy.Policy{}, err
	}
	r := &record{file: "the cmdlet line", start: 1, props: append([]prop{{name: "Identity", value: "partner.invalid"}}, args...)}
	for _, p := range args {
		if p.name == "Identity" || p.name == "Domain" {
			r.props = args
		}
	}
	e, _, err := r.entry(true)
	var perr *Error
	if errors.As(err, &perr) && perr.Property != "" {
		// One line: the file, line and placeholder identity say nothing.
		err = fmt.Errorf("-%s: %w", perr.Property, perr.Err)
	}
	return e.Policy, err
}

// parseCmdlets reads New-CsXmppAllowedPartner lines (with the documented
// defaults for what they leave out) and Set-CsXmppAllowedPartner lines
// that change an entry created above. '#' starts a comment; a backtick
// at the end of a line continues it.
func parseCmdlets(file string, data []byte) ([]Entry, []Note, error) {
	var entries []Entry
	var notes []Note
	index := map[string]int{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimRight(lines[i], "\r")
		if continued(line) && i+1 < len(lines) {
			// Joined with a builder: adding each continuation line to
			// the line would copy it again for every line (quadratic).
			var b strings.Builder
			for continued(line) && i+1 < len(lines) {
				b.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t"), "`"))
				b.WriteByte(' ')
				line = strings.TrimRight(lines[i+1], "\r")
				i++
			}
			b.WriteString(line)
			line = b.String()
		}
		words, err := splitWords(line)
		if err != nil {
			return nil, nil, &Error{File: file, Line: n, Err: err}
		}
		if len(words) == 0 {
			continue
		}
		verb := strings.ToLower(words[0])
		if verb != "new-csxmppallowedpartner" && verb != "set-csxmppallowedpartner" {
			return nil, nil, &Error{File: file, Line: n, Err: fmt.Errorf("%q: only New-CsXmppAllowedPartner and Set-CsXmppAllowedPartner lines are read", words[0])}
		}
		rec := &record{file: file, start: n}
		args, err := cmdletArgs(words[1:], n, &notes, file)
		if err != nil {
			return nil, nil, err
		}
		rec.props = args
		if verb == "new-csxmppallowedpartner" {
			e, ns, err := rec.entry(true)
			if err != nil {
				return nil, nil, err
			}
			if prev, ok := index[strings.ToLower(e.Domain)]; ok {
				return nil, nil, &Error{File: file, Line: n, Record: e.Domain, Err: fmt.Errorf("created twice (also at %s)", entries[prev].Source)}
			}
			index[strings.ToLower(e.Domain)] = len(entries)
			entries = append(entries, e)
			notes = append(notes, ns...)
			continue
		}
		// Set-: the entry created above, with what this line changes.
		id := ""
		for _, p := range args {
			if p.name == "Identity" || p.name == "Domain" {
				id = strings.TrimSpace(p.value)
			}
		}
		if id == "" {
			return nil, nil, &Error{File: file, Line: n, Err: fmt.Errorf("Set-CsXmppAllowedPartner without -Identity")}
		}
		at, ok := index[strings.ToLower(id)]
		if !ok {
			return nil, nil, &Error{File: file, Line: n, Record: id, Err: fmt.Errorf("Set-CsXmppAllowedPartner for a partner no New-CsXmppAllowedPartner line above creates")}
		}
		cur := entries[at]
		merged := &record{file: file, start: n, props: cur.props()}
		for _, p := range args {
			if p.name == "Identity" || p.name == "Domain" {
				continue
			}
			merged.set(p)
		}
		e, ns, err := merged.entry(true)
		if err != nil {
			return nil, nil, err
		}
		e.Source = cur.Source
		entries[at] = e
		notes = append(notes, ns...)
	}
	return entries, notes, nil
}

// continued reports whether line ends with a backtick: the command goes
// on on the next line.
func continued(line string) bool { return strings.HasSuffix(strings.TrimRight(line, " \t"), "`") }

// props are e's properties as a cmdlet line would give them.
func (e Entry) props() []prop {
	return []prop{
		{name: "Identity", value: e.Identity},
		{name: "Domain", value: e.Domain},
		{name: "AdditionalDomains", list: e.AdditionalDomains, isList: true},
		{name: "PartnerType", value: string(e.PartnerType)},
		{name: "TlsNegotiation", value: e.Policy.TLS.String()},
		{name: "SaslNegotiation", value: e.Policy.SASL.String()},
		{name: "SupportDialbackNegotiation", value: fmt.Sprint(e.Policy.Dialback)},
		{name: "EnableKeepAlive", value: fmt.Sprint(e.EnableKeepAlive)},
		{name: "ProxyFqdn", value: e.ProxyFqdn},
		{name: "ConnectionLimit", value: fmt.Sprint(e.ConnectionLimit)},
		{name: "Description", value: e.Description},
	}
}

// set replaces the property p names.
func (r *record) set(p prop) {
	for i := range r.props {
		if r.props[i].name == p.name {
			r.props[i] = p
			return
		}
	}
	r.props = append(r.props, p)
}

// cmdletArgs reads the parameters of one line: -Name value, -Name:value,
// the identity as the first positional argument, names abbreviated as
// PowerShell allows when the prefix is unambiguous.
func cmdletArgs(words []string, line int, notes *[]Note, file string) ([]prop, error) {
	var out []prop
	positional := 0
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") {
			if positional == 0 {
				out = append(out, prop{name: "Identity", value: unquote(w), line: line})
				positional++
				continue
			}
			return nil, &Error{File: file, Line: line, Err: fmt.Errorf("unexpected argument %q", w)}
		}
		name, value, inline := strings.Cut(w[1:], ":")
		full, err := paramName(name)
		if err != nil {
			return nil, &Error{File: file, Line: line, Err: err}
		}
		if isSwitch(full) {
			if full == "WhatIf" {
				*notes = append(*notes, Note{Where: fmt.Sprintf("%s:%d", file, line), Text: "-WhatIf: read as if the line had run"})
			}
			continue
		}
		if !inline {
			if i+1 >= len(words) || (strings.HasPrefix(words[i+1], "-") && len(words[i+1]) > 1 && !isNumber(words[i+1])) {
				return nil, &Error{File: file, Line: line, Property: full, Err: ErrNoValue}
			}
			i++
			value = words[i]
		}
		p := prop{name: full, line: line}
		if full == "AdditionalDomains" {
			p.isList = true
			p.list, err = listValue(value)
			if err != nil {
				return nil, &Error{File: file, Line: line, Property: full, Err: err}
			}
		} else {
			p.value = unquote(value)
		}
		out = append(out, p)
	}
	return out, nil
}

func isNumber(s string) bool {
	_, err := fmt.Sscan(s, new(int))
	return err == nil
}

func isSwitch(name string) bool {
	for _, s := range cmdletSwitches {
		if s == name {
			return true
		}
	}
	return false
}

// paramName expands a parameter name or an unambiguous prefix of one.
func paramName(name string) (string, error) {
	var matches []string
	for _, p := range append(append([]string{}, cmdletParams...), cmdletSwitches...) {
		if strings.EqualFold(p, name) {
			return p, nil
		}
		if len(name) > 0 && strings.HasPrefix(strings.ToLower(p), strings.ToLower(name)) {
			matches = append(matches, p)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		hint := ""
		if near := policy.Closest(name, cmdletParams); near != "" {
			hint = fmt.Sprintf("; did you mean -%s?", near)
		}
		return "", fmt.Errorf("unknown parameter -%s%s (parameters: -%s)", name, hint, strings.Join(cmdletParams, ", -"))
	}
	return "", fmt.Errorf("-%s is ambiguous: -%s", name, strings.Join(matches, ", -"))
}

// listValue reads a list of domains: "a","b" or @{Add="a","b"} (a
// PSListModifier; Add and Replace both give the list).
func listValue(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "@{") && strings.HasSuffix(v, "}") {
		inner := strings.TrimSpace(v[2 : len(v)-1])
		key, rest, ok := strings.Cut(inner, "=")
		key = strings.TrimSpace(key)
		if !ok || !(strings.EqualFold(key, "Add") || strings.EqualFold(key, "Replace")) {
			return nil, fmt.Errorf("%q: only @{Add=...} and @{Replace=...} are read", v)
		}
		v = rest
	}
	var out []string
	for _, d := range strings.Split(v, ",") {
		if d = unquote(strings.TrimSpace(d)); d != "" {
			out = append(out, d)
		}
	}
	return out, nil
}

// unquote reads a PowerShell string literal: single-quoted, where two
// single quotes stand for one, or double-quoted, where two double quotes
// or a backtick and a double quote do.
func unquote(s string) string {
	switch {
	case len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'':
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	case len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"':
		return strings.NewReplacer(`""`, `"`, "`\"", `"`).Replace(s[1 : len(s)-1])
	}
	return s
}

// splitWords splits a command line on blanks outside quotes and @{…},
// drops a '#' comment, and joins "a", "b" into one list word.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	depth := 0
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range line {
		switch {
		case quote != 0:
			cur.WriteRune(r)
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
			cur.WriteRune(r)
		case r == '{':
			depth++
			cur.WriteRune(r)
		case r == '}':
			depth--
			cur.WriteRune(r)
		case r == '#' && depth == 0 && cur.Len() == 0:
			flush()
			return joinLists(words), nil
		case (r == ' ' || r == '\t') && depth == 0:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("a quote is not closed")
	}
	if depth != 0 {
		return nil, fmt.Errorf("a brace is not closed")
	}
	flush()
	return joinLists(words), nil
}

// joinLists joins the words of "a", "b" (a comma ends a word or starts the
// next) into one.
func joinLists(words []string) []string {
	var out []string
	var cur []string // the words of the last output word, joined once
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, ""))
			cur = cur[:0]
		}
	}
	for _, w := range words {
		if n := len(cur); n > 0 && (strings.HasSuffix(cur[n-1], ",") || strings.HasPrefix(w, ",")) {
			cur = append(cur, w)
			continue
		}
		flush()
		cur = append(cur, w)
	}
	flush()
	return out
}

// Cmdlet is the Set-CsXmppAllowedPartner line that changes the
// negotiation settings of the partner identity from "from" to "to",
// naming only the parameters that change.
func Cmdlet(identity string, from, to policy.Policy) string {
	var b strings.Builder
	b.WriteString("Set-CsXmppAllowedPartner -Identity " + quoteIfNeeded(identity))
	if from.TLS != to.TLS {
		b.WriteString(" -TlsNegotiation " + to.TLS.String())
	}
	if from.SASL != to.SASL {
		b.WriteString(" -SaslNegotiation " + to.SASL.String())
	}
	if from.Dialback != to.Dialback {
		fmt.Fprintf(&b, " -SupportDialbackNegotiation $%t", to.Dialback)
	}
	return b.String()
}

// NewCmdlet is the New-CsXmppAllowedPartner line that creates e.
func NewCmdlet(e Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "New-CsXmppAllowedPartner -Identity %s -TlsNegotiation %s -SaslNegotiation %s -SupportDialbackNegotiation $%t -PartnerType %s",
		quoteIfNeeded(e.Identity), e.Policy.TLS, e.Policy.SASL, e.Policy.Dialback, e.PartnerType)
	if len(e.AdditionalDomains) > 0 {
		var q []string
		for _, d := range e.AdditionalDomains {
			q = append(q, quoteIfNeeded(d))
		}
		b.WriteString(" -AdditionalDomains " + strings.Join(q, ","))
	}
	if e.EnableKeepAlive {
		b.WriteString(" -EnableKeepAlive $true")
	}
	if e.ProxyFqdn != "" {
		b.WriteString(" -ProxyFqdn " + quoteIfNeeded(e.ProxyFqdn))
	}
	if e.ConnectionLimit != 0 {
		fmt.Fprintf(&b, " -ConnectionLimit %d", e.ConnectionLimit)
	}
	if e.Description != "" {
		b.WriteString(" -Description " + quoteIfNeeded(e.Description))
	}
	return b.String()
}

// psQuotes are the characters PowerShell's tokenizer takes for a single
// quote: each ends a single-quoted string, and two of them stand for
// one (ASCII ', and U+2018 to U+201B as Word and Outlook type them).
const psQuotes = "'\u2018\u2019\u201a\u201b"

// bare matches what PowerShell reads as one plain word: a domain name.
var bare = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// quoteIfNeeded writes s as a PowerShell argument that an administrator
// can paste: a domain name as it is, anything else single-quoted with
// every quote character doubled, so that nothing in s ends the string
// and starts a command. Control and format characters (a newline ends
// a pasted command where quotes do not hold it) are written as visible
// escapes: such a value is never a real partner's, and is shown, not
// reproduced.
func quoteIfNeeded(s string) string {
	if bare.MatchString(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range printable.String(s) {
		if strings.ContainsRune(psQuotes, r) {
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}
