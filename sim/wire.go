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

// Connection names, as transcripts and failures show them.
const (
	mainConn   = "main"
	verifyConn = "verify"
)

// xconn is the wire: one TCP connection carrying XML streams, as one
// end of it sees it. It writes and reads elements within the endpoint's
// limits (a byte budget, under the deadline armed on the connection),
// records both into the transcript, knows the step it is in, and turns
// every error into a typed failure (abort). What is negotiated over it
// is not its business: TLS configuration, certificate judgement and
// what the handshake found are tlsEnd's (tlsconfig.go), kept by each
// role's state; the XML itself is in xml.go. Each role's negotiation
// (initiator, receiver, verifier, authoritative) drives one.
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
