package sim

import (
	"encoding/xml"
	"fmt"
	"strings"

	"xmppneg/policy/outcome"
)

// The XML of server-to-server streams, apart from any connection: the
// namespaces, elements read from a peer as small trees within Limits,
// stream headers, and what this harness writes.

// XML namespaces of the protocols negotiated here.
const (
	nsStreams      = "http://etherx.jabber.org/streams"
	nsServer       = "jabber:server"
	nsDialback     = "jabber:server:dialback"
	nsDialbackFeat = "urn:xmpp:features:dialback"
	// XEP-0288: the feature a receiver offers, and the request an
	// initiator answers it with (ejabberd 24.12 offers the latter's
	// namespace as the feature).
	nsBidiFeat = "urn:xmpp:features:bidi"
	nsBidi     = "urn:xmpp:bidi"
	// XEP-0478: the limits a receiver advertises in its features.
	nsStreamLimits = "urn:xmpp:stream-limits:0"
	// XEP-0440: the SASL channel-binding types a receiver supports.
	nsSASLCB    = "urn:xmpp:sasl-cb:0"
	nsTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL      = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsStreamErr = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzaErr = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsPing      = "urn:xmpp:ping"
)

// element is an XML element read from a peer, as a small tree.
type element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*element
	Text     string
}

func (e *element) attr(local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == e.Name.Space) {
			return a.Value
		}
	}
	return ""
}

func (e *element) child(space, local string) *element {
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

func (e *element) is(space, local string) bool {
	return e.Name.Space == space && e.Name.Local == local
}

// condition returns the name of the first child that is not <text/>, and
// the text, as stream errors, SASL failures and stanza errors carry them.
func (e *element) condition(space string) (outcome.Condition, string) {
	var cond outcome.Condition
	var text string
	for _, c := range e.Children {
		switch {
		case space != "" && c.Name.Space != space:
		case c.Name.Local == "text":
			text = strings.TrimSpace(c.Text)
		case cond == "":
			cond = outcome.Condition(c.Name.Local)
		}
	}
	return cond, text
}

// String is a short description such as <starttls xmlns='…'>.
func (e *element) String() string {
	return fmt.Sprintf("<%s xmlns='%s'>", e.Name.Local, e.Name.Space)
}

// Limits bound what an endpoint reads from a peer: a larger element is a
// <policy-violation/> stream error naming the limit.
type Limits struct {
	// MaxElementBytes bounds one top-level element, and also every byte
	// read while waiting for it (whitespace, text): counted as they
	// arrive, before the XML decoder buffers them.
	MaxElementBytes int
	// MaxHeaderBytes bounds a stream header with its XML declaration.
	MaxHeaderBytes int
	MaxDepth       int
	MaxChildren    int // of any one element
}

// DefaultLimits apply where Config.Limits leaves a field zero.
var DefaultLimits = Limits{MaxElementBytes: 64 << 10, MaxHeaderBytes: 4 << 10, MaxDepth: 16, MaxChildren: 256}

func (l Limits) orDefault() Limits {
	if l.MaxElementBytes <= 0 {
		l.MaxElementBytes = DefaultLimits.MaxElementBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultLimits.MaxHeaderBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxChildren <= 0 {
		l.MaxChildren = DefaultLimits.MaxChildren
	}
	return l
}

// readElement reads the next top-level element of the stream within the
// limits lim. It returns errStreamClosed when the peer ends its stream,
// and a *peerStreamError when the peer sends <stream:error/>.
func readElement(r xml.TokenReader, lim Limits) (*element, error) {
	for {
		tok, err := r.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			budget := lim.MaxElementBytes
			el, err := readTree(r, t.Copy(), 1, lim, &budget)
			if err != nil {
				return nil, err
			}
			if el.is(nsStreams, "error") {
				cond, text := el.condition(nsStreamErr)
				return nil, &peerStreamError{cond: orCondition(cond), text: text}
			}
			return el, nil
		case xml.EndElement:
			return nil, errStreamClosed
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return nil, badFormat("text outside any element")
			}
		}
	}
}

func orCondition(c outcome.Condition) outcome.Condition {
	if c == "" {
		return outcome.UndefinedCondition
	}
	return c
}

func readTree(r xml.TokenReader, start xml.StartElement, depth int, lim Limits, budget *int) (*element, error) {
	if depth > lim.MaxDepth {
		return nil, policyViolation(fmt.Sprintf("element nesting deeper than %d", lim.MaxDepth))
	}
	spend := func(n int) error {
		if *budget -= n; *budget < 0 {
			return policyViolation(fmt.Sprintf("element larger than %d bytes", lim.MaxElementBytes))
		}
		return nil
	}
	size := len(start.Name.Local)
	for _, a := range start.Attr {
		size += len(a.Name.Local) + len(a.Value)
	}
	if err := spend(size); err != nil {
		return nil, err
	}
	el := &element{Name: start.Name, Attr: start.Attr}
	for {
		tok, err := r.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(el.Children) >= lim.MaxChildren {
				return nil, policyViolation(fmt.Sprintf("more than %d child elements", lim.MaxChildren))
			}
			c, err := readTree(r, t.Copy(), depth+1, lim, budget)
			if err != nil {
				return nil, err
			}
			el.Children = append(el.Children, c)
		case xml.CharData:
			if err := spend(len(t)); err != nil {
				return nil, err
			}
			el.Text += string(t)
		case xml.EndElement:
			return el, nil
		}
	}
}

// header is what an opening stream header carried.
type header struct {
	From, To, ID, Version, NS string
	// Legacy is set for a pre-1.0 stream: no version, or one below 1.0.
	Legacy bool
}

// readHeader reads the peer's opening stream header.
func readHeader(r xml.TokenReader) (header, error) {
	for {
		tok, err := r.Token()
		if err != nil {
			return header{}, err
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.Comment, xml.Directive:
			continue
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return header{}, badFormat("text before the stream header")
			}
		case xml.StartElement:
			if t.Name.Space != nsStreams || t.Name.Local != "stream" {
				if t.Name.Local == "stream" {
					return header{}, &streamError{cond: outcome.InvalidNamespace, text: fmt.Sprintf("stream namespace is %q, not %q", t.Name.Space, nsStreams)}
				}
				return header{}, badFormat(fmt.Sprintf("expected a stream header, got <%s>", t.Name.Local))
			}
			var h header
			for _, a := range t.Attr {
				if a.Name.Space != "" {
					continue
				}
				switch a.Name.Local {
				case "from":
					h.From = a.Value
				case "to":
					h.To = a.Value
				case "id":
					h.ID = a.Value
				case "version":
					h.Version = a.Value
				case "xmlns":
					h.NS = a.Value
				}
			}
			if h.NS != nsServer {
				return h, &streamError{cond: outcome.InvalidNamespace, text: fmt.Sprintf("default namespace is %q; server-to-server streams use %q", h.NS, nsServer)}
			}
			legacy, ok := streamVersion(h.Version)
			if !ok {
				return h, &streamError{cond: outcome.UnsupportedVersion, text: fmt.Sprintf("stream version %q; this server speaks 1.0 (and pre-1.0 streams)", h.Version)}
			}
			h.Legacy = legacy
			return h, nil
		default:
			return header{}, badFormat("unexpected token before the stream header")
		}
	}
}

// headerXML is an opening stream header. The dialback namespace is
// declared on it so that db: elements need no declaration of their own.
func headerXML(from, to, id string) string { return streamHeader(from, to, id, "1.0") }

// legacyHeaderXML is a pre-1.0 stream header: no version (RFC 6120
// §4.7.5).
func legacyHeaderXML(from, to, id string) string { return streamHeader(from, to, id, "") }

func streamHeader(from, to, id, version string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'")
	attr(&b, "from", from)
	attr(&b, "to", to)
	attr(&b, "id", id)
	attr(&b, "version", version)
	b.WriteString(">")
	return b.String()
}

func attr(b *strings.Builder, name, value string) {
	if value == "" {
		return
	}
	b.WriteString(" " + name + "='")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteString("'")
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// streamErrorXML is a stream error; the caller ends the stream after it.
func streamErrorXML(condition, text string) string {
	s := "<stream:error><" + condition + " xmlns='" + nsStreamErr + "'/>"
	if text != "" {
		s += "<text xmlns='" + nsStreamErr + "'>" + esc(text) + "</text>"
	}
	return s + "</stream:error>"
}
