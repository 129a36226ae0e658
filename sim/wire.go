package sim

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"

	"xmppneg/policy/outcome"
)

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

// Connection names, as transcripts and failures show them.
const (
	mainConn   = "main"
	verifyConn = "verify"
)

// xconn is one TCP connection carrying XML streams, as one end of it
// sees it: what it writes and reads, its TLS layer, the step it is in,
// and the trace it records into. Each role's negotiation (initiator,
// receiver, verifier, authoritative) drives one.
type xconn struct {
	ep       *Endpoint
	raw      net.Conn // the TCP connection
	conn     net.Conn // raw, or the TLS connection over it
	in       *reader
	dec      *xml.Decoder
	tr       *trace
	name     string // mainConn or verifyConn
	me, them outcome.Side
	peer     string // the other end's domain, once known
	step     outcome.Step
	deadline time.Time
	secure   bool
	// headerSent is set once this end has opened its current stream: a
	// stream error may only be sent inside one (RFC 6120 §4.9.1.1).
	headerSent bool
	// closed is set once this end has ended its current stream.
	closed bool
	// directTLS is set on a connection that starts with TLS (XEP-0368)
	// rather than STARTTLS.
	directTLS bool
	labelMe   string // "initiator a.test", for transcripts
	labelOf   string
}

// reader is what the XML decoder reads from: the connection, through a
// buffer that outlives stream restarts (bytes the peer sent after one
// stream's last element belong to the next), recording what it reads
// when asked to, and keeping the error the connection returned so that
// a stream cut off mid-element is told apart from malformed XML.
//
// It also holds the peer to a byte budget, enforced as bytes arrive and
// before anything buffers them: the decoder may read at most allow bytes
// in all, which the connection moves forward as the stream makes
// progress (see xconn.budget). Whitespace, text and attributes count
// like everything else, so no run of them can grow without bound.
type reader struct {
	c   *xconn
	br  *bufio.Reader
	err error // the first error the connection returned

	total int64 // bytes read from the connection through this reader
	allow int64 // total may not pass it
	// budget is what allow was set for: the limit, and whether it is the
	// stream header's, to say which once it is reached.
	budget       int
	headerBudget bool
	// sniff is set until the first bytes of the connection (or of its
	// TLS layer) have been looked at: a peer that does not start with
	// '<' is not speaking XML, and is told so at once.
	sniff bool
}

type connReader struct{ r *reader }

func (cr connReader) Read(b []byte) (int, error) {
	r := cr.r
	c := r.c
	left := r.allow - r.total
	if left <= 0 {
		if r.headerBudget {
			return 0, policyViolation(fmt.Sprintf("stream header larger than %d bytes", r.budget))
		}
		return 0, policyViolation(fmt.Sprintf("more than %d bytes without a complete element", r.budget))
	}
	if int64(len(b)) > left {
		b = b[:left]
	}
	n, err := c.conn.Read(b)
	r.total += int64(n)
	if c.ep.cfg.RecordReads && n > 0 {
		c.tr.add(Entry{Conn: c.name, From: c.labelOf, To: c.labelMe, TLS: c.secure, XML: string(b[:n]), Read: true})
	}
	if r.sniff && n > 0 {
		if i := bytes.IndexFunc(b[:n], func(ch rune) bool { return !unicode.IsSpace(ch) && ch != '\uFEFF' }); i >= 0 {
			r.sniff = false
			if b[i] != '<' {
				start := b[i:n]
				if len(start) > 32 {
					start = start[:32]
				}
				return 0, &streamError{cond: outcome.NotWellFormed, text: fmt.Sprintf("not XML: the %s's first bytes are %q", c.them, start)}
			}
		}
	}
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// budget lets the peer send n more bytes beyond what the decoder has
// consumed, for a stream header or for the next element.
func (c *xconn) budget(n int, header bool) {
	consumed := c.in.total - int64(c.in.br.Buffered())
	c.in.allow, c.in.budget, c.in.headerBudget = consumed+int64(n), n, header
}

// budgetHeader is the budget of a stream header, XML declaration and
// whitespace before it included.
func (c *xconn) budgetHeader() { c.budget(c.ep.cfg.Limits.orDefault().MaxHeaderBytes, true) }

// budgetElement is the budget of the next top-level element, whitespace
// and text before it included.
func (c *xconn) budgetElement() { c.budget(c.ep.cfg.Limits.orDefault().MaxElementBytes, false) }

func newXConn(ep *Endpoint, raw net.Conn, tr *trace, name string, me, them outcome.Side, peer string, deadline time.Time) *xconn {
	c := &xconn{ep: ep, raw: raw, conn: raw, tr: tr, name: name, me: me, them: them, peer: peer, deadline: deadline}
	c.relabel()
	c.in = &reader{c: c, sniff: true}
	c.in.br = bufio.NewReaderSize(connReader{c.in}, 4096)
	c.restart()
	return c
}

// relabel sets the names transcripts give the two ends.
func (c *xconn) relabel() {
	peer := c.peer
	if peer == "" {
		peer = "?"
	}
	c.labelMe = c.me.String() + " " + c.ep.cfg.Domain
	c.labelOf = c.them.String() + " " + peer
}

// becomes changes the roles of the two ends, once it is known what a
// connection is for.
func (c *xconn) becomes(name string, me, them outcome.Side) {
	c.name, c.me, c.them = name, me, them
	c.relabel()
}

// restart begins a new stream on the connection (RFC 6120 §4.3.3): a new
// parser, and no header of ours on it yet.
func (c *xconn) restart() {
	c.dec = xml.NewDecoder(c.in.br)
	c.headerSent, c.closed = false, false
	c.budgetHeader()
}

// readHeader reads the peer's stream header, then budgets for the first
// element.
func (c *xconn) readHeader() (header, error) {
	h, err := readHeader(c.dec)
	if err == nil {
		c.budgetElement()
	}
	return h, err
}

// upgrade puts TLS under the connection after <proceed/>. Nothing may
// have arrived after the element that ended the plain stream: bytes
// already buffered would be plain text the peer slipped in front of the
// handshake.
func (c *xconn) upgrade(tc *tls.Conn) error {
	if n := c.in.br.Buffered(); n > 0 {
		return &streamError{cond: outcome.PolicyViolation, text: fmt.Sprintf("%d bytes sent after STARTTLS before the TLS handshake", n)}
	}
	c.conn = tc
	c.secure = true
	// The plain stream's buffer is empty, so it serves the TLS one.
	br := c.in.br
	c.in = &reader{c: c, br: br, sniff: true}
	br.Reset(connReader{c.in})
	c.restart()
	return nil
}

// tlsState returns the TLS state of the connection, or nil on a plain one.
func (c *xconn) tlsState() *tls.ConnectionState {
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return &cs
}

// send writes elements to the peer in one write (one TLS record, one
// system call) and records each of them as its own transcript entry.
func (c *xconn) send(elements ...string) error {
	size := 0
	for _, e := range elements {
		c.tr.add(Entry{Conn: c.name, From: c.labelMe, To: c.labelOf, TLS: c.secure, XML: e})
		size += len(e)
		if e == closeTag {
			c.closed = true
		}
	}
	b := make([]byte, 0, size)
	for _, e := range elements {
		b = append(b, e...)
	}
	_, err := c.conn.Write(b)
	return err
}

// sendHeader opens this end's stream, pre-1.0 when its behaviour says
// so (no version, and, as jabberd2 does, no addresses).
func (c *xconn) sendHeader(from, to, id string) error {
	c.headerSent = true
	if c.name == mainConn && !c.secure && c.me == outcome.Initiator {
		switch {
		case c.ep.fault(NotXML):
			return c.send("GET / HTTP/1.1\r\nHost: " + to + "\r\n\r\n")
		case c.ep.fault(HeaderFlood):
			h := headerXML(from, to, id)
			return c.send(strings.TrimSuffix(h, ">") + " x='" + strings.Repeat("a", 2*c.ep.cfg.Limits.orDefault().MaxHeaderBytes) + "'>")
		}
	}
	if c.ep.cfg.Settings.LegacyStreams {
		return c.send(legacyHeaderXML("", "", id))
	}
	return c.send(headerXML(from, to, id))
}

// read reads the next top-level element of the current stream within
// the endpoint's limits.
func (c *xconn) read() (*element, error) {
	el, err := readElement(c.dec, c.ep.cfg.Limits.orDefault())
	if err == nil {
		c.budgetElement()
	}
	return el, err
}

const closeTag = "</stream:stream>"

// closeStream ends this end's stream, once; errors do not matter any
// more.
func (c *xconn) closeStream() {
	if !c.closed {
		_ = c.send(closeTag)
	}
}

// ended reports whether err means the peer ended its stream or the
// connection: what a side that has what it wanted expects.
func (c *xconn) ended(err error) bool {
	return errors.Is(err, errStreamClosed) || isClosed(err) || (isSyntax(err) && c.in.err != nil)
}

// failure returns the failure err stands for, recording it first if no
// one has.
func (c *xconn) failure(err error) outcome.Failure {
	var rec *recorded
	if !errors.As(err, &rec) {
		errors.As(c.abort(err), &rec)
	}
	return rec.f
}

// drain reads until the peer ends its stream or the deadline passes.
func (c *xconn) drain() {
	for {
		if _, err := c.read(); err != nil {
			return
		}
	}
}

// onConn maps a step to what it is part of: on a verify connection
// everything is part of the dialback verification.
func (c *xconn) onConn(step outcome.Step) outcome.Step {
	if c.name == verifyConn && step != outcome.StepTimeout {
		return outcome.StepDialbackVerify
	}
	return step
}

// record puts a failure in the trace and returns it as an error.
func (c *xconn) record(f outcome.Failure) error {
	f.Conn = c.name
	if f.Step != outcome.StepTimeout {
		f.Step = c.onConn(f.Step)
	}
	c.tr.fail(f)
	return &recorded{f}
}

// fail records a failure this end raises in the current step.
func (c *xconn) fail(cond outcome.Condition, format string, a ...any) error {
	return c.record(outcome.Failure{Step: c.step, Condition: cond, By: c.me, Message: fmt.Sprintf(format, a...)})
}

// peerFailed records a failure the peer raised in the current step.
func (c *xconn) peerFailed(cond outcome.Condition, format string, a ...any) error {
	return c.record(outcome.Failure{Step: c.step, Condition: cond, By: c.them, Message: fmt.Sprintf(format, a...)})
}

// refuse records a failure this end raises and then tells the peer with
// elements: recorded first, so that the peer's record of it comes second
// and the root cause stays first.
func (c *xconn) refuse(cond outcome.Condition, msg string, elements ...string) error {
	err := c.fail(cond, "%s", msg)
	_ = c.send(elements...)
	return err
}

// raise records a stream error this end raises, sends it inside a
// stream of ours (opened for the purpose if need be) and closes.
func (c *xconn) raise(cond outcome.Condition, text string) error {
	err := c.fail(cond, "%s", text)
	var out []string
	if !c.headerSent {
		out = append(out, headerXML(c.ep.cfg.Domain, c.peer, c.ep.newID()))
		c.headerSent = true
	}
	_ = c.send(append(out, streamErrorXML(string(cond), text), closeTag)...)
	return err
}

// abort turns any error met during a step into a recorded failure, and
// tells the peer with a stream error when this end raised it. This is
// the one place where errors are classified, by their type.
func (c *xconn) abort(err error) error {
	var rec *recorded
	var se *streamError
	var pe *peerStreamError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rec):
		return err
	case errors.As(err, &se):
		if se.step != 0 {
			c.step = se.step
		}
		return c.raise(se.cond, se.text)
	case errors.As(err, &pe):
		c.closeStream()
		return c.peerFailed(pe.cond, "%s", orDefault(pe.text, "the "+c.them.String()+" sent a stream error"))
	case errors.Is(err, errStreamClosed):
		c.closeStream()
		return c.peerFailed(outcome.ConnectionClosed, "the %s closed its stream during %s without an error", c.them, c.step)
	case isTimeout(err) && time.Now().Before(c.deadline):
		// The deadline has not passed: the negotiation was stopped (the
		// run interrupted, the endpoint closed), which arm does by
		// moving the deadline into the past. Not a timeout of the peer.
		rerr := c.record(outcome.Failure{Condition: outcome.CancelledByCaller, By: c.me, During: c.onConn(c.step),
			Message: fmt.Sprintf("stopped during %s, before its deadline: the run was interrupted or the endpoint closed", c.step)})
		_ = c.raw.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if c.headerSent {
			_ = c.send(closeTag)
		}
		return rerr
	case isTimeout(err):
		msg := fmt.Sprintf("no answer from the %s within %s while in step %s", c.them, c.ep.timeout, c.step)
		rerr := c.record(outcome.Failure{Step: outcome.StepTimeout, Condition: outcome.ConnectionTimeout, By: c.me, During: c.onConn(c.step), Message: msg})
		// The deadline has passed; give the error a moment to go out.
		_ = c.raw.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		out := []string{}
		if !c.headerSent {
			out = append(out, headerXML(c.ep.cfg.Domain, c.peer, c.ep.newID()))
		}
		_ = c.send(append(out, streamErrorXML(string(outcome.ConnectionTimeout), msg), closeTag)...)
		return rerr
	}
	if alert, ok := remoteAlert(err); ok {
		// In TLS 1.3 the client finishes its handshake before the server
		// has checked the client's certificate: the server's refusal
		// arrives as an alert on the first read after the handshake.
		c.step = outcome.StepTLSHandshake
		switch {
		case alert == alertProtocolVersion:
			return c.peerFailed(outcome.ProtocolVersion, "the %s accepts none of the TLS versions the %s speaks (%s): %v",
				c.them, c.me, c.ep.cfg.Settings.TLSRangeText(), err)
		case alert.aboutCertificate():
			return c.peerFailed(outcome.BadCertificate, "the %s aborted TLS: %v", c.them, err)
		}
		return c.peerFailed(outcome.HandshakeFailure, "the %s aborted TLS: %v", c.them, err)
	}
	if isClosed(err) || (isSyntax(err) && c.in.err != nil) {
		return c.peerFailed(outcome.ConnectionClosed, "the %s closed the connection during %s without an error", c.them, c.step)
	}
	if isSyntax(err) {
		return c.raise(outcome.NotWellFormed, err.Error())
	}
	return c.raise(outcome.UndefinedCondition, err.Error())
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

// waitSilently says nothing more and waits until the peer gives up, or
// the end's own deadline, which it puts after the peer's so that the
// peer sees silence rather than a close.
func (c *xconn) waitSilently() error {
	_ = c.raw.SetReadDeadline(time.Now().Add(2 * c.ep.timeout))
	buf := make([]byte, 512)
	for {
		if _, err := c.raw.Read(buf); err != nil {
			return &recorded{outcome.Failure{Step: c.step, Condition: outcome.SilentOnPurpose, By: c.me, Message: "waited in silence, as its behaviour says"}}
		}
	}
}
