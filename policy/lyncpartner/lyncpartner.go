// Package lyncpartner reads the XMPP partner list of a Lync Server 2013 /
// Skype for Business XMPP gateway as its management shell writes it:
// Get-CsXmppAllowedPartner | Format-List, Export-Csv, ConvertTo-Json, or
// the New-/Set-CsXmppAllowedPartner lines themselves. It also writes the
// Set-CsXmppAllowedPartner line that changes an entry.
//
// Nothing is guessed: a value the cmdlets would not accept is an error
// naming the file, the line, the record and the property; a property that
// is not a partner setting is ignored with a note; a setting left out of
// a cmdlet line takes the documented default (TlsNegotiation Required,
// SaslNegotiation Required, SupportDialbackNegotiation True, PartnerType
// PublicUnverified).
package lyncpartner

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"xmppneg/policy"
	"xmppneg/policy/domain"
)

// PartnerType says who may invite whom; nothing documented makes it
// change negotiation.
type PartnerType string

// The partner types of -PartnerType.
const (
	Federated        PartnerType = "Federated"
	PublicVerified   PartnerType = "PublicVerified"
	PublicUnverified PartnerType = "PublicUnverified"
)

var partnerTypes = []PartnerType{Federated, PublicVerified, PublicUnverified}

func parsePartnerType(s string) (PartnerType, error) {
	for _, t := range partnerTypes {
		if strings.EqualFold(strings.TrimSpace(s), string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("invalid value %q: accepted values are Federated, PublicVerified, PublicUnverified", s)
}

// Entry is one XMPP allowed partner: the domain and the settings the
// gateway negotiates with it.
type Entry struct {
	Identity          string        `json:"identity"`
	Domain            string        `json:"domain"`
	AdditionalDomains []string      `json:"additional_domains"`
	PartnerType       PartnerType   `json:"partner_type"`
	Policy            policy.Policy `json:"settings"` // TlsNegotiation, SaslNegotiation, SupportDialbackNegotiation
	EnableKeepAlive   bool          `json:"enable_keep_alive"`
	ProxyFqdn         string        `json:"proxy_fqdn"`
	ConnectionLimit   int           `json:"connection_limit"`
	Description       string        `json:"description"`
	// Source is where the entry was read: file:line.
	Source string `json:"-"`
}

// Default is a new entry for domain as New-CsXmppAllowedPartner makes it
// when given nothing else: TLS Required, SASL Required, dialback True
// (row M1 of the full matrix, where dialback does not operate),
// PublicUnverified.
func Default(domain string) Entry {
	return Entry{Identity: domain, Domain: domain, AdditionalDomains: []string{}, PartnerType: PublicUnverified,
		Policy: policy.Policy{TLS: policy.Required, SASL: policy.Required, Dialback: true}}
}

// Note is something the reader passed over, with where.
type Note struct {
	Where string `json:"where"`
	Text  string `json:"text"`
	// group names what the note says, so that the same thing said of
	// every entry makes one note: then, groupText with the count.
	group, groupText string
}

func (n Note) String() string { return n.Where + ": " + n.Text }

// Error is a value the cmdlets would not accept, or input that is not a
// partner list.
type Error struct {
	File     string
	Line     int
	Record   string // the entry's identity, when known
	Property string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Record != "" {
		fmt.Fprintf(&b, ": partner %q", e.Record)
	}
	if e.Property != "" {
		b.WriteString(": " + e.Property)
	}
	return b.String() + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Format is one of the shapes a partner list comes in.
type Format string

// The formats Parse reads.
const (
	FormatList Format = "format-list" // Get-CsXmppAllowedPartner | Format-List
	FormatCSV  Format = "csv"         // Export-Csv
	FormatJSON Format = "json"        // ConvertTo-Json
	FormatCmd  Format = "cmdlets"     // New-/Set-CsXmppAllowedPartner lines
)

// MaxListBytes is the default limit on a partner list's size: a large
// gateway's 50,000 partners in Format-List take about 22 MB (partners
// --max-input raises it).
const MaxListBytes = 64 << 20

var cmdletLine = regexp.MustCompile(`(?i)^\s*(New|Set)-CsXmppAllowedPartner\b`)

// Detect says which format data is in.
func Detect(data []byte) (Format, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		return "", fmt.Errorf("empty: no partner entries")
	}
	if trimmed[0] == '[' || trimmed[0] == '{' {
		return FormatJSON, nil
	}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#TYPE") || (strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "#TYPE")):
			continue
		case cmdletLine.MatchString(l):
			return FormatCmd, nil
		case strings.Contains(l, " : ") || strings.HasSuffix(l, " :"):
			return FormatList, nil
		case strings.Contains(l, ","):
			return FormatCSV, nil
		}
		break
	}
	return "", fmt.Errorf("not a partner list: expected the output of Get-CsXmppAllowedPartner | Format-List, Export-Csv or ConvertTo-Json, or New-CsXmppAllowedPartner lines")
}

// Parse reads the partner list in data, in whichever format it is; file
// names it in errors and notes. Every entry must have a domain, and no
// domain may be listed twice.
func Parse(file string, data []byte) ([]Entry, []Note, error) {
	f, err := Detect(data)
	if err != nil {
		return nil, nil, &Error{File: file, Err: err}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var entries []Entry
	var notes []Note
	switch f {
	case FormatList:
		entries, notes, err = parseFormatList(file, data)
	case FormatCSV:
		entries, notes, err = parseCSV(file, data)
	case FormatJSON:
		entries, notes, err = parseJSON(file, data)
	case FormatCmd:
		entries, notes, err = parseCmdlets(file, data)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(entries) == 0 {
		return nil, nil, &Error{File: file, Err: fmt.Errorf("no partner entries")}
	}
	notes = collapse(notes)
	seen := map[string]string{}
	for _, e := range entries {
		key := strings.ToLower(e.Domain)
		if prev, ok := seen[key]; ok {
			return nil, nil, &Error{File: file, Record: e.Domain, Err: fmt.Errorf("listed twice (%s and %s)", prev, e.Source)}
		}
		seen[key] = e.Source
	}
	return entries, notes, nil
}

// collapse makes one note of a property ignored in several entries.
func collapse(notes []Note) []Note {
	var out []Note
	at := map[string]int{}
	count := map[string]int{}
	for _, n := range notes {
		if n.group == "" {
			out = append(out, n)
			continue
		}
		count[n.group]++
		if _, ok := at[n.group]; !ok {
			at[n.group] = len(out)
			out = append(out, n)
		}
	}
	for g, i := range at {
		if c := count[g]; c > 1 {
			out[i].Text = fmt.Sprintf(out[i].groupText, c)
		}
	}
	return out
}

// record collects one entry's properties as text, whatever the format,
// and turns them into an Entry.
type record struct {
	file  string
	start int // line of the record
	props []prop
}

type prop struct {
	name, value string
	line        int
	list        []string // for AdditionalDomains when the format has lists
	isList      bool
	wrapped     []string // Format-List: the value's continuation lines, while reading
}

// properties of an entry, by their names in the cmdlets' output.
var knownProps = []string{"Identity", "Domain", "AdditionalDomains", "PartnerType", "TlsNegotiation", "SaslNegotiation",
	"SupportDialbackNegotiation", "EnableKeepAlive", "ProxyFqdn", "ConnectionLimit", "Description"}

// entry turns r into an Entry; negotiation settings it does not have
// take the documented defaults, with a note unless defaults says they are
// expected to be left out (cmdlet lines).
func (r *record) entry(defaults bool) (Entry, []Note, error) {
	var e Entry
	var notes []Note
	set := map[string]bool{}
	e = Default("")
	where := func(line int) string { return fmt.Sprintf("%s:%d", r.file, line) }
	// The identity first, so that errors can name the record.
	for _, p := range r.props {
		switch {
		case strings.EqualFold(p.name, "Identity"):
			e.Identity = strings.TrimSpace(p.value)
		case strings.EqualFold(p.name, "Domain"):
			e.Domain = strings.TrimSpace(p.value)
		}
	}
	if e.Domain == "" {
		e.Domain = e.Identity
	}
	if e.Identity == "" {
		e.Identity = e.Domain
	}
	fail := func(p prop, err error) (Entry, []Note, error) {
		return Entry{}, nil, &Error{File: r.file, Line: p.line, Record: e.Identity, Property: canonical(p.name), Err: err}
	}
	if e.Domain == "" {
		return Entry{}, nil, &Error{File: r.file, Line: r.start, Err: fmt.Errorf("an entry without Identity or Domain")}
	}
	// The identity of an XMPP partner is its domain: one that is not a
	// domain is never a real partner, and it is printed in the
	// Set-CsXmppAllowedPartner line an administrator pastes.
	for _, c := range []struct{ name, value string }{{"Domain", e.Domain}, {"Identity", e.Identity}} {
		if err := checkDomain(c.value); err != nil {
			for _, p := range r.props {
				if strings.EqualFold(p.name, c.name) {
					return fail(p, err)
				}
			}
			for _, p := range r.props {
				if strings.EqualFold(p.name, "Domain") || strings.EqualFold(p.name, "Identity") {
					return fail(p, err)
				}
			}
		}
	}
	for _, p := range r.props {
		name := canonical(p.name)
		if set[name] {
			return fail(p, fmt.Errorf("given twice"))
		}
		set[name] = true
		v := strings.TrimSpace(p.value)
		var err error
		switch name {
		case "Identity", "Domain":
		case "AdditionalDomains":
			if typeName(p) {
				const why = "not the domains: Export-Csv cannot write lists; export with ConvertTo-Json or Format-List to keep them"
				notes = append(notes, Note{Where: where(p.line), Text: fmt.Sprintf("partner %q: AdditionalDomains is a type name (%s), %s", e.Identity, v, why),
					group: "AdditionalDomains type", groupText: "AdditionalDomains is a type name in %d entries, the first here: " + why})
				break
			}
			e.AdditionalDomains, err = domainList(p)
		case "PartnerType":
			e.PartnerType, err = parsePartnerType(v)
		case "TlsNegotiation":
			e.Policy.TLS, err = parseLevel(v)
		case "SaslNegotiation":
			e.Policy.SASL, err = parseLevel(v)
		case "SupportDialbackNegotiation":
			e.Policy.Dialback, err = parseBool(v)
		case "EnableKeepAlive":
			e.EnableKeepAlive, err = parseBool(v)
		case "ProxyFqdn":
			e.ProxyFqdn = v
		case "ConnectionLimit":
			if v != "" {
				if _, serr := fmt.Sscan(v, &e.ConnectionLimit); serr != nil || e.ConnectionLimit < 0 || fmt.Sprint(e.ConnectionLimit) != v {
					err = fmt.Errorf("invalid value %q: a whole number from 0", v)
				}
			}
		case "Description":
			e.Description = v
		default:
			notes = append(notes, Note{Where: where(p.line), Text: fmt.Sprintf("property %q ignored (not a partner setting)", p.name),
				group: "ignored " + p.name, groupText: fmt.Sprintf("property %q ignored in %%d entries, the first here (not a partner setting)", p.name)})
		}
		if err != nil {
			return fail(p, err)
		}
	}
	if !defaults {
		for _, name := range []string{"TlsNegotiation", "SaslNegotiation", "SupportDialbackNegotiation"} {
			if !set[name] {
				notes = append(notes, Note{Where: where(r.start), Text: fmt.Sprintf("partner %q has no %s: the documented default %s is used", e.Identity, name, defaultText(name))})
			}
		}
	}
	if e.AdditionalDomains == nil {
		e.AdditionalDomains = []string{}
	}
	e.Source = where(r.start)
	return e, notes, nil
}

func defaultText(name string) string {
	d := Default("")
	switch name {
	case "TlsNegotiation":
		return d.Policy.TLS.String()
	case "SaslNegotiation":
		return d.Policy.SASL.String()
	}
	return "True"
}

func known(name string) bool {
	for _, k := range knownProps {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// canonical spells a property name as the cmdlets do, whatever its case.
func canonical(name string) string {
	for _, k := range knownProps {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

// parseLevel reads a negotiation level as the cmdlets spell it.
func parseLevel(s string) (policy.Level, error) {
	for _, l := range policy.Levels {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("invalid value %q: accepted values are Required, Optional, NotSupported", s)
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "$true":
		return true, nil
	case "false", "$false":
		return false, nil
	}
	return false, fmt.Errorf("invalid value %q: accepted values are True, False", s)
}

var domainName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// checkDomain refuses what cannot be a DNS domain: the name ends up in
// stream headers, certificates and file names.
func checkDomain(d string) error {
	if len(d) > 253 || !domainName.MatchString(d) {
		return fmt.Errorf("%q is not a domain name", d)
	}
	return domain.Check(d)
}

// typeName reports whether p holds a .NET type name where a list was
// expected: what Export-Csv writes for a list property.
func typeName(p prop) bool {
	v := strings.TrimSpace(p.value)
	return !p.isList && (strings.HasPrefix(v, "Microsoft.") || strings.HasPrefix(v, "System."))
}

// domainList reads AdditionalDomains: a list, or "{a, b}" as Format-List
// prints one, or a type name where Export-Csv could not print the list.
func domainList(p prop) ([]string, error) {
	items := p.list
	if !p.isList {
		v := strings.TrimSpace(p.value)
		v = strings.TrimSuffix(strings.TrimPrefix(v, "{"), "}")
		items = append(items, strings.Split(v, ",")...)
	}
	out := []string{}
	for _, d := range items {
		d = strings.Trim(strings.TrimSpace(d), `"'`)
		if d == "" {
			continue
		}
		if err := checkDomain(d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
