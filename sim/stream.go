package sim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"mellium.im/xmpp/stream"
)

// XML namespaces of the protocols negotiated here.
const (
	nsStreams      = "http://etherx.jabber.org/streams"
	nsServer       = "jabber:server"
	nsDialback     = "jabber:server:dialback"
	nsDialbackFeat = "urn:xmpp:features:dialback"
	nsTLS          = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL         = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsStreamErr    = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzaErr    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsPing         = "urn:xmpp:ping"
)

// Limits bound what an endpoint reads from a peer: a larger element is a
// <policy-violation/> stream error naming the limit.
type Limits struct {
	MaxElementBytes int // names, attribute values and text of one element, nested ones included
	MaxDepth        int
	MaxChildren     int // of any one element
}

// DefaultLimits apply where Config.Limits leaves a field zero.
var DefaultLimits = Limits{MaxElementBytes: 64 << 10, MaxDepth: 16, MaxChildren: 256}

func (l Limits) orDefault() Limits {
	if l.MaxElementBytes <= 0 {
		l.MaxElementBytes = DefaultLimits.MaxElementBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxChildren <= 0 {
		l.MaxChildren = DefaultLimits.MaxChildren
	}
	return l
}

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

// String is a short description such as <starttls xmlns='…'>.
func (e *element) String() string {
	return fmt.Sprintf("<%s xmlns='%s'>", e.Name.Local, e.Name.Space)
}

// errStreamClosed is returned when the peer closed its stream.
var errStreamClosed = errors.New("the peer closed its stream")

// peerStreamError is a stream error the peer sent.
type peerStreamError struct {
	Condition string
	Text      string
}

func (e peerStreamError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("stream error <%s/>: %s", e.Condition, e.Text)
	}
	return fmt.Sprintf("stream error <%s/>", e.Condition)
}

// readElement reads the next top-level element of the stream. It returns
// errStreamClosed when the peer ends its stream, and peerStreamError
// when the peer sends <stream:error/>.
func readElement(r xml.TokenReader) (*element, error) { return readElementWith(r, DefaultLimits) }

// readElementWith is readElement within the limits lim.
func readElementWith(r xml.TokenReader, lim Limits) (*element, error) {
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
				return nil, streamErrorFrom(el)
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

func streamErrorFrom(el *element) peerStreamError {
	e := peerStreamError{Condition: "undefined-condition"}
	for _, c := range el.Children {
		if c.Name.Space != nsStreamErr {
			continue
		}
		if c.Name.Local == "text" {
			e.Text = strings.TrimSpace(c.Text)
		} else {
			e.Condition = c.Name.Local
		}
	}
	return e
}

// localError is a stream error this endpoint raises: sent to the peer,
// then the stream is closed.
type localError struct {
	Condition string
	Text      string
}

func (e localError) Error() string { return fmt.Sprintf("<%s/>: %s", e.Condition, e.Text) }

func policyViolation(text string) localError { return localError{"policy-violation", text} }
func badFormat(text string) localError       { return localError{"bad-format", text} }

// header is what an opening stream header carried.
type header struct {
	From, To, ID, Version, NS string
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
					return header{}, localError{"invalid-namespace", fmt.Sprintf("stream namespace is %q, not %q", t.Name.Space, nsStreams)}
				}
				return header{}, badFormat(fmt.Sprintf("expected a stream header, got <%s>", t.Name.Local))
			}
			var h header
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "from":
					h.From = a.Value
				case a.Name.Space == "" && a.Name.Local == "to":
					h.To = a.Value
				case a.Name.Space == "" && a.Name.Local == "id":
					h.ID = a.Value
				case a.Name.Space == "" && a.Name.Local == "version":
					h.Version = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					h.NS = a.Value
				}
			}
			if h.NS != nsServer {
				return h, localError{"invalid-namespace", fmt.Sprintf("default namespace is %q; server-to-server streams use %q", h.NS, nsServer)}
			}
			v, err := stream.ParseVersion(h.Version)
			if err != nil || v.Less(stream.DefaultVersion) {
				return h, localError{"unsupported-version", fmt.Sprintf("stream version %q; 1.0 is required", h.Version)}
			}
			return h, nil
		default:
			return header{}, badFormat("unexpected token before the stream header")
		}
	}
}

// headerXML is an opening stream header. The dialback namespace is
// declared on it so that db: elements need no declaration of their own.
func headerXML(from, to, id string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'")
	attr(&b, "from", from)
	attr(&b, "to", to)
	attr(&b, "id", id)
	b.WriteString(" version='1.0'>")
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

func newStreamID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// isClosed reports whether err means the peer went away.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, errStreamClosed) || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "unexpected EOF") || strings.Contains(err.Error(), "broken pipe")
}

// isSyntax reports whether err is XML that is not well-formed, other than
// a stream cut off in the middle.
func isSyntax(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se) && !strings.Contains(se.Msg, "unexpected EOF")
}
