package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"xmppneg/policy/outcome"
	"xmppneg/sim"
)

// Classification is what the recording says of one direction.
type Classification struct {
	Outcome outcome.Outcome
	// Settled is set once the direction authenticated, or its first main
	// connection ended.
	Settled    bool
	Transcript []sim.Entry
	Notes      []string
	TLS        *sim.TLSInfo
}

// Classify says what the stream from from to to came to, from every
// connection from opened to to's relay (its main connections; those
// that only carried db:verify belong to the other direction) and every
// connection to opened to from's relay to verify a dialback key (the
// verify connections). The first main connection that authenticated
// gives the method; when none did, the first main connection gives the
// failure, as the first failure on it that nothing made good. timedOut
// says that the direction's deadline has passed: a connection still
// open then failed with a timeout, raised by the side that waits for
// the other's move (the one that spoke last).
func (r *Recorder) Classify(from, to string, timedOut bool) Classification {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mains, verifies []*connRecord
	for _, c := range r.conns {
		switch {
		case c.peer == from && c.domain == to && !c.verifyOnly():
			mains = append(mains, c)
		case c.peer == to && c.domain == from && c.sent(peerSide, "db:verify"):
			verifies = append(verifies, c)
		}
	}
	t0, ok := r.marks[[2]string{from, to}]
	for _, c := range mains {
		if !ok || c.start.Before(t0) {
			t0, ok = c.start, true
		}
	}
	var out Classification
	mainLabels := map[string]string{peerSide: "initiator " + from, domainSide: "receiver " + to}
	verifyLabels := map[string]string{peerSide: "receiver " + to, domainSide: "authoritative " + from}
	for i, c := range mains {
		out.Transcript = append(out.Transcript, c.transcript(connName("main", i), t0, mainLabels)...)
		out.Notes = append(out.Notes, prefixed(connName("main", i), c.notes)...)
		if c.cut > 0 {
			out.Notes = append(out.Notes, fmt.Sprintf("%s: %d more elements not kept", connName("main", i), c.cut))
		}
	}
	for i, c := range verifies {
		out.Transcript = append(out.Transcript, c.transcript(connName("verify", i), t0, verifyLabels)...)
		out.Notes = append(out.Notes, prefixed(connName("verify", i), c.notes)...)
	}
	sort.SliceStable(out.Transcript, func(i, j int) bool { return out.Transcript[i].Elapsed < out.Transcript[j].Elapsed })

	if r.dropped > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("the recorder kept no more connections after %d: %d not kept", maxConns, r.dropped))
	}
	if len(mains) == 0 {
		out.Outcome = outcome.Failed(outcome.Failure{Step: outcome.StepTimeout, During: outcome.StepTCP, Condition: outcome.NoConnection, By: outcome.Initiator,
			Message: fmt.Sprintf("%s did not connect to %s", from, to)})
		return out
	}
	for _, c := range mains {
		if m := c.method(); m != 0 {
			out.Outcome, out.Settled, out.TLS = outcome.Succeeded(m), true, c.simTLS()
			return out
		}
	}
	// The first main connection gives the failure, unless EXTERNAL was
	// refused on it and the initiator came back on another connection
	// (ejabberd 24.12 tries dialback so): that one decides.
	i := 0
	f, settled := mains[0].failure(timedOut, t0)
	for settled && f.Step == outcome.StepSASL && i+1 < len(mains) {
		i++
		f, settled = mains[i].failure(timedOut, t0)
	}
	out.TLS = mains[i].simTLS()
	out.Outcome, out.Settled = outcome.Failed(f), settled
	return out
}

func connName(kind string, i int) string {
	if i == 0 {
		return kind
	}
	return fmt.Sprintf("%s-%d", kind, i+1)
}

func prefixed(p string, notes []string) []string {
	var out []string
	for _, n := range notes {
		out = append(out, p+": "+n)
	}
	return out
}

var (
	tagName  = regexp.MustCompile(`^<([A-Za-z_][\w.:-]*)`)
	typeAttr = regexp.MustCompile(`\stype=['"]([a-z]+)['"]`)
	xmlnsTLS = "urn:ietf:params:xml:ns:xmpp-tls"
	xmlnsSSL = "urn:ietf:params:xml:ns:xmpp-sasl"
	startTag = regexp.MustCompile(`<([A-Za-z_][\w.:-]*)`)
)

// name is the qualified name of the element xml starts with.
func name(xml string) string {
	if m := tagName.FindStringSubmatch(xml); m != nil {
		return m[1]
	}
	return ""
}

// local is a name without its prefix.
func local(n string) string {
	if i := strings.LastIndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}

func isStartTLS(xml string) bool {
	return local(name(xml)) == "starttls" && strings.Contains(xml, xmlnsTLS)
}
func isProceed(xml string) bool {
	return local(name(xml)) == "proceed" && strings.Contains(xml, xmlnsTLS)
}
func isTLSFailure(xml string) bool {
	return local(name(xml)) == "failure" && strings.Contains(xml, xmlnsTLS)
}
func isSASLFailure(xml string) bool {
	return local(name(xml)) == "failure" && strings.Contains(xml, xmlnsSSL)
}

// isDialback reports whether xml is a db:result or db:verify (el is
// "result" or "verify"), whatever prefix it uses.
func isDialback(xml, el string) bool {
	n := name(xml)
	return n == "db:"+el || (local(n) == el && strings.Contains(xml, "jabber:server:dialback"))
}

// sent reports whether side sent an element named n ("db:verify").
func (c *connRecord) sent(side, n string) bool {
	for _, e := range c.entries {
		if e.side != side {
			continue
		}
		if (n == "db:verify" && isDialback(e.xml, "verify")) || (n == "db:result" && isDialback(e.xml, "result")) {
			return true
		}
	}
	return false
}

// verifyOnly reports whether the connection's initiator only asked to
// verify keys: a verify connection, not a stream of its own.
func (c *connRecord) verifyOnly() bool {
	if !c.sent(peerSide, "db:verify") || c.sent(peerSide, "db:result") {
		return false
	}
	for _, e := range c.entries {
		if e.side == peerSide && local(name(e.xml)) == "auth" {
			return false
		}
	}
	return true
}

// method is the method the connection authenticated with, if any.
func (c *connRecord) method() outcome.Method {
	sasl := false
	for _, e := range c.entries {
		n := local(name(e.xml))
		switch {
		case e.side == peerSide && n == "auth" && strings.Contains(e.xml, xmlnsSSL):
			sasl = true
		case e.side == domainSide && sasl && n == "success" && strings.Contains(e.xml, xmlnsSSL):
			return outcome.SASLOverTLS
		case e.side == domainSide && isDialback(e.xml, "result") && attrType(e.xml) == "valid":
			if e.tls {
				return outcome.TLSDialback
			}
			return outcome.TCPDialback
		}
	}
	return 0
}

func attrType(xml string) string {
	head := xml
	if i := strings.IndexByte(xml, '>'); i >= 0 {
		head = xml[:i]
	}
	if m := typeAttr.FindStringSubmatch(head); m != nil {
		return m[1]
	}
	return ""
}

// condition is the name of the first element inside xml's root other
// than <text/> and <error/>: a stream error's, SASL failure's or dialback
// error's condition.
func condition(xml string, fallback outcome.Condition) outcome.Condition {
	tags := startTag.FindAllStringSubmatch(xml, 50)
	for i, m := range tags {
		if i == 0 {
			continue // the root
		}
		if l := local(m[1]); l != "text" && l != "error" {
			return outcome.Condition(l)
		}
	}
	return fallback
}

// failure is the root cause of a connection that did not authenticate,
// in the step the initiator had reached; settled reports whether the
// connection has ended (or the deadline passed).
func (c *connRecord) failure(timedOut bool, t0 time.Time) (outcome.Failure, bool) {
	step := outcome.StepStream
	side := func(s string) outcome.Side {
		if s == peerSide {
			return outcome.Initiator
		}
		return outcome.Receiver
	}
	var pending *outcome.Failure // a SASL failure, made good if dialback follows
	last := ""                   // who sent the last element
	elapsed := func(at time.Time) int64 { return at.Sub(t0).Microseconds() }
	for _, e := range c.entries {
		n := local(name(e.xml))
		from := side(e.side)
		switch {
		case e.side == peerSide && isStartTLS(e.xml):
			step = outcome.StepStartTLS
		case e.side == domainSide && isProceed(e.xml):
			step = outcome.StepTLSHandshake
		case e.tls && step == outcome.StepTLSHandshake:
			step = outcome.StepStream
		}
		switch {
		case e.side == peerSide && n == "auth" && strings.Contains(e.xml, xmlnsSSL):
			step = outcome.StepSASL
		case e.side == peerSide && isDialback(e.xml, "result"):
			step, pending = outcome.StepDialback, nil
		}
		f := outcome.Failure{Step: step, By: from, Conn: "main", Elapsed: elapsed(e.at)}
		switch {
		case strings.HasPrefix(name(e.xml), "stream:error") || (n == "error" && strings.Contains(e.xml, "http://etherx.jabber.org/streams")):
			f.Condition = condition(e.xml, outcome.UndefinedCondition)
			f.Message = fmt.Sprintf("the %s sent a stream error: %s", from, clip(e.xml))
			return f, true
		case e.side == domainSide && isTLSFailure(e.xml):
			f.Step, f.Condition, f.Message = outcome.StepStartTLS, outcome.StartTLSFailure, "the receiver refused STARTTLS: "+clip(e.xml)
			return f, true
		case e.side == domainSide && isSASLFailure(e.xml):
			f.Step, f.Condition, f.Message = outcome.StepSASL, condition(e.xml, outcome.UndefinedCondition), "the receiver refused SASL: "+clip(e.xml)
			pending = &f
		case e.side == domainSide && isDialback(e.xml, "result") && attrType(e.xml) == "invalid":
			f.Step, f.Condition, f.Message = outcome.StepDialback, outcome.DialbackInvalid, "the receiver found the dialback key invalid: "+clip(e.xml)
			return f, true
		case e.side == domainSide && isDialback(e.xml, "result") && attrType(e.xml) == "error":
			f.Step, f.Condition, f.Message = outcome.StepDialback, condition(e.xml, outcome.UndefinedCondition), "the receiver answered the dialback key with an error: "+clip(e.xml)
			switch f.Condition {
			case outcome.RemoteServerNotFound, outcome.RemoteServerTimeout, outcome.RemoteConnectionFailed:
				// It could not ask the authoritative server: its verify
				// step failed, as the engine records it.
				f.Step = outcome.StepDialbackVerify
			}
			return f, true
		case strings.HasPrefix(e.xml, "</"):
			if pending != nil {
				return *pending, true
			}
			// An end tag that answers the other side's hang-up: the
			// relay passed the connection's end on, and the server
			// closed its stream in turn. The hang-up came first.
			other := domainSide
			if e.side == domainSide {
				other = peerSide
			}
			if at, ok := c.closed[other]; ok && at.Before(e.at) {
				by := side(other)
				return outcome.Failure{Step: step, Condition: outcome.ConnectionClosed, By: by, Conn: "main", Elapsed: elapsed(at),
					Message: fmt.Sprintf("the %s closed the connection during %s without an error", by, step)}, true
			}
			f.Condition, f.Message = outcome.ConnectionClosed, fmt.Sprintf("the %s closed its stream during %s without an error", from, step)
			return f, true
		}
		last = e.side
	}
	if pending != nil && c.ended() {
		return *pending, true
	}
	if hf := c.failedTL; hf != nil {
		f := outcome.Failure{Step: outcome.StepTLSHandshake, Conn: "main", Elapsed: elapsed(hf.at), Condition: handshakeCondition(hf.err)}
		switch hf.by {
		case peerSide:
			f.By = outcome.Initiator
		case domainSide:
			f.By = outcome.Receiver
		}
		f.Message = fmt.Sprintf("TLS failed on the relay's leg with the %s: %v", f.By, hf.err)
		return f, true
	}
	if c.ended() {
		closer, at := peerSide, time.Time{}
		for s, t := range c.closed {
			if at.IsZero() || t.Before(at) {
				closer, at = s, t
			}
		}
		by := side(closer)
		return outcome.Failure{Step: step, Condition: outcome.ConnectionClosed, By: by, Conn: "main", Elapsed: elapsed(at),
			Message: fmt.Sprintf("the %s closed the connection during %s without an error", by, step)}, true
	}
	if timedOut {
		// Both servers' own deadlines are longer than the federation's:
		// the side waiting for the other's move (the one that spoke
		// last) is the one whose deadline would end it, as the oracle
		// says of an end that waits.
		by := outcome.Initiator
		if last == domainSide {
			by = outcome.Receiver
		}
		return outcome.Failure{Step: outcome.StepTimeout, During: step, Condition: outcome.ConnectionTimeout, By: by, Conn: "main",
			Message: fmt.Sprintf("still in step %s when the federation's deadline passed, the %s waiting for the %s", step, by, map[outcome.Side]string{outcome.Initiator: "receiver", outcome.Receiver: "initiator"}[by])}, true
	}
	return outcome.Failure{Step: step}, false
}

// handshakeCondition names why a handshake failed, as the harness does.
func handshakeCondition(err error) outcome.Condition {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		switch uint8(ae) {
		case 70:
			return outcome.ProtocolVersion
		case 42, 43, 44, 45, 46, 48, 49:
			return outcome.BadCertificate
		}
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "protocol version"):
		return outcome.ProtocolVersion
	case strings.Contains(s, "certificate"):
		return outcome.BadCertificate
	case strings.Contains(s, "EOF") || strings.Contains(s, "reset"):
		return outcome.ConnectionClosed
	}
	return outcome.HandshakeFailure
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
