package sim

import (
	"fmt"
	"strings"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// connecting is what both ends that open streams do: the initiating
// server on the main connection, and the receiving server on its verify
// connection.
type connecting struct {
	c        *xconn
	tls      tlsEnd
	offer    features // what the other end offered on the current stream
	streamID string   // the other end's id of the current stream
	seenIDs  []string // every id it gave, to catch reuse
	// legacy is set on a pre-1.0 stream (either end's header without a
	// version): no features, no TLS, dialback at once.
	legacy bool
	// limits are the XEP-0478 limits the other end last advertised, on
	// any stream of the connection, authenticated ones included.
	limits *streamLimits
}

// newConnecting is the state of an end that opens streams on c.
func newConnecting(c *xconn) connecting { return connecting{c: c, tls: tlsEnd{c: c}} }

// openStream sends our stream header, reads the other end's and its
// features (RFC 6120 §4.2, §4.3.2). After authentication the features
// are only read, not offered for a choice.
func (o *connecting) openStream(from, to string, authenticated bool) error {
	c := o.c
	c.step = outcome.StepStream
	if err := c.sendHeader(from, to, ""); err != nil {
		return c.abort(err)
	}
	h, err := c.readHeader()
	if err != nil {
		return c.abort(err)
	}
	switch {
	case h.From != "" && h.From != c.peer:
		return c.abort(&streamError{cond: outcome.InvalidFrom, text: fmt.Sprintf("connected to %s but the stream is from %q", c.peer, h.From)})
	case h.ID == "" && !h.Legacy:
		return c.abort(badFormat("the " + c.them.String() + "'s stream header has no id"))
	}
	for _, id := range o.seenIDs {
		if id == h.ID {
			return c.abort(policyViolation(fmt.Sprintf("the %s reused stream id %s on the restarted stream", c.them, id)))
		}
	}
	o.seenIDs = append(o.seenIDs, h.ID)
	o.streamID = h.ID
	if c.name == mainConn {
		c.tr.streamID(h.ID)
	}
	if h.Legacy || c.ep.cfg.Settings.LegacyStreams {
		// A pre-1.0 stream has no features; a pre-1.0 initiator does not
		// wait for any (doDialback skips them if they come).
		o.legacy, o.offer = true, features{}
		if c.name == mainConn {
			c.tr.offer(c.secure, o.offer)
		}
		return nil
	}
	el, err := c.read()
	if err != nil {
		return c.abort(err)
	}
	if !el.is(nsStreams, "features") {
		return c.abort(badFormat(fmt.Sprintf("expected <stream:features/>, got %s", el)))
	}
	f := parseFeatures(el)
	if f.Limits != nil {
		o.limits = f.Limits
	}
	if authenticated {
		return nil
	}
	o.offer = f
	if c.name == mainConn && bidiRequest(c.ep.cfg.Settings, f, c.secure) {
		// XEP-0288: asked for before authenticating; no answer comes.
		// Prosody 13 tells its own limits inside the request (there are
		// no features the other way on a bidirectional stream).
		req := "<bidi xmlns='" + nsBidi + "'/>"
		if l := limitsOffer(c.ep.cfg.Settings); l != nil {
			req = "<bidi xmlns='" + nsBidi + "'>" + l.xml() + "</bidi>"
		}
		if err := c.send(req); err != nil {
			return c.abort(err)
		}
	}
	if c.name == mainConn {
		c.tr.offer(c.secure, o.offer)
	}
	return nil
}

// initiatorState is the negotiation of the initiating server on the
// main connection (RFC 6120 §4–§6, XEP-0178, XEP-0220 §2.1): it opens a
// stream, reads the receiver's offer, secures the stream with STARTTLS
// when it can, authenticates with SASL EXTERNAL, or with Server Dialback
// when EXTERNAL is not possible or fails, and then does what it opened
// the stream for.
type initiatorState struct {
	connecting
	method outcome.Method
}

// handshake runs the negotiation up to an authenticated stream.
func (hs *initiatorState) handshake() error {
	c := hs.c
	if err := hs.directTLS(); err != nil {
		return err
	}
	if err := hs.openStream(hs.from(), hs.to(), false); err != nil {
		return err
	}
	if hs.legacy {
		return hs.authenticateLegacy()
	}
	if err := hs.misbehave(); err != nil {
		return c.abort(err)
	}
	err := hs.secure(func() error {
		if c.ep.fault(NoRestart) {
			return hs.skipRestart()
		}
		return hs.openStream(hs.from(), hs.to(), false)
	})
	if err != nil {
		return err
	}
	return hs.authenticate()
}

// from and to are the addresses of our stream header, as the faults
// that tamper with them leave them.
func (hs *initiatorState) from() string {
	c := hs.c
	switch {
	case c.ep.fault(OmitFrom):
		return ""
	case c.ep.fault(ChangeFrom) && c.secure:
		return "someone-else." + c.ep.cfg.Domain
	}
	return c.ep.cfg.Domain
}

func (hs *initiatorState) to() string {
	if hs.c.ep.fault(OmitTo) {
		return ""
	}
	return hs.c.peer
}

// authenticate tries the authentication methods of streamFeatures in
// their order of preference, each that both ends allow, falling back to
// the next when the receiver refuses one; when none is left it gives up
// at the step of the first one offered, saying why each was not used.
func (hs *initiatorState) authenticate() error {
	c := hs.c
	var whyNot []string
	for _, sf := range streamFeatures {
		a := sf.auth
		if a == nil {
			continue
		}
		use, why := a.choose(hs)
		if use {
			m, err := a.negotiate(hs)
			if err != nil {
				return err
			}
			if m != 0 {
				hs.method = m
				return nil
			}
			why = a.refused
		}
		if why != "" {
			whyNot = append(whyNot, why)
		}
	}
	c.step = failStep(hs.offer)
	return hs.noMethod("no common authentication method: " + strings.Join(whyNot, "; "))
}

// noMethod gives up, no method being left, as the end's behaviour says:
// <policy-violation/> at the step it stands in (this harness),
// <unsupported-feature/> at the stream step (Prosody), or hanging up
// (ejabberd).
func (hs *initiatorState) noMethod(why string) error {
	c := hs.c
	switch c.ep.cfg.Settings.NoMethod {
	case policy.NoMethodUnsupportedFeature:
		c.step = outcome.StepStream
		return c.abort(&streamError{cond: outcome.UnsupportedFeature, text: why})
	case policy.NoMethodClose:
		c.step = outcome.StepStream
		err := c.fail(outcome.ConnectionClosed, "hung up: %s", why)
		c.raw.Close()
		return err
	}
	return c.abort(policyViolation(why))
}

// withinLimits checks a stanza of size bytes against the max-bytes the
// receiver advertised (XEP-0478 §3: a larger one may get the stream
// closed with <policy-violation/>): one that would exceed it is not
// sent, the stream is closed, and the negotiation fails saying so, the
// harness's own finding.
func (hs *initiatorState) withinLimits(size int) error {
	l := hs.limits
	if l == nil || l.MaxBytes <= 0 {
		return nil
	}
	if size > l.MaxBytes {
		err := hs.c.fail(outcome.PolicyViolation, "the stanza the %s would send is %d bytes, more than the %d of max-bytes the %s advertised (XEP-0478): not sent", hs.c.me, size, l.MaxBytes, hs.c.them)
		// Ended here rather than left open: the receiver would otherwise
		// wait out its deadline for a stanza that never comes.
		hs.c.closeStream()
		return err
	}
	hs.c.tr.note(fmt.Sprintf("the %s advertised XEP-0478 max-bytes %d: the %s's stanza of %d bytes is within it", hs.c.them, l.MaxBytes, hs.c.me, size))
	return nil
}

// pingAndClose proves the authenticated stream carries stanzas with an
// XEP-0199 ping, then ends the stream. The answer may come back on this
// stream or, from servers that answer over a stream of their own (Prosody
// and ejabberd without XEP-0288), on any inbound stream of this endpoint.
func (hs *initiatorState) pingAndClose() error {
	c := hs.c
	id := "xmppneg-ping-" + c.ep.newID()
	elsewhere := c.ep.expectAnswer(id)
	defer c.ep.forgetAnswer(id)
	type next struct {
		el  *element
		err error
	}
	elems := make(chan next, 1)
	go func() {
		defer close(elems)
		for {
			el, err := c.read()
			elems <- next{el, err}
			if err != nil {
				return
			}
		}
	}()
	err := func() error {
		ping := fmt.Sprintf("<iq type='get' id='%s' from='%s' to='%s'><ping xmlns='%s'/></iq>", id, esc(c.ep.cfg.Domain), esc(c.peer), nsPing)
		if err := hs.withinLimits(len(ping)); err != nil {
			return err
		}
		if err := c.send(ping); err != nil {
			return err
		}
		for {
			select {
			case <-elsewhere:
				return nil
			case n := <-elems:
				if n.err != nil {
					return n.err
				}
				if n.el.is(nsServer, "iq") && n.el.attr("id") == id {
					if n.el.attr("type") == "result" {
						return nil
					}
					return c.peerFailed(outcome.PingError, "the receiver answered the ping with an error")
				}
			}
		}
	}()
	if err != nil {
		err = c.abort(err)
	} else {
		c.closeStream()
	}
	// The reader ends when the peer ends its stream, or at the deadline.
	for range elems {
	}
	return err
}

// sendAndClose sends stanza on the authenticated stream and ends it:
// how a server answers a peer whose stream is one-way.
func (hs *initiatorState) sendAndClose(stanza string) error {
	c := hs.c
	if err := c.send(stanza, closeTag); err != nil {
		return c.abort(err)
	}
	c.drain()
	return nil
}

// misbehave carries out the initiating end's faults that act right after
// the first features: it returns nil when there is none to carry out, or
// the error the peer's answer came to.
func (hs *initiatorState) misbehave() error {
	c := hs.c
	if c.secure || c.name != mainConn {
		return nil
	}
	var el string
	switch {
	case c.ep.fault(AuthBeforeTLS):
		c.step = outcome.StepSASL
		el = "<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>=</auth>"
	case c.ep.fault(StanzaBeforeAuth):
		el = fmt.Sprintf("<message from='%s' to='someone@%s'><body>before authentication</body></message>", esc(c.ep.cfg.Domain), esc(c.peer))
	case c.ep.fault(DialbackBeforeTLS):
		if err := hs.doDialback(); err != nil {
			return err
		}
		return fmt.Errorf("the receiver accepted dialback on a plain stream")
	case c.ep.fault(MalformedXML):
		el = "<message><body>not well-formed</message>"
	case c.ep.fault(Oversize):
		el = fmt.Sprintf("<message from='%s' to='someone@%s'><body>%s</body></message>", esc(c.ep.cfg.Domain), esc(c.peer), strings.Repeat("x", 2*c.ep.cfg.Limits.orDefault().MaxElementBytes))
	case c.ep.fault(WhitespaceFlood):
		el = strings.Repeat(" \n", c.ep.cfg.Limits.orDefault().MaxElementBytes)
	case c.ep.fault(TextFlood):
		el = strings.Repeat("spam", c.ep.cfg.Limits.orDefault().MaxElementBytes/2)
	default:
		return nil
	}
	if err := c.send(el); err != nil {
		return err
	}
	for {
		el, err := c.read()
		if err != nil {
			return err
		}
		if el.is(nsSASL, "failure") {
			cond, _ := el.condition("")
			_ = c.peerFailed(orCondition(cond), "the receiver refused <auth/> on a plain stream")
		}
	}
}

// skipRestart carries out the no-restart fault: after TLS it goes on as
// if the stream had not been secured, without a new stream header.
func (hs *initiatorState) skipRestart() error {
	c := hs.c
	c.headerSent = true // the stream it pretends to continue
	if err := c.send("<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>=</auth>"); err != nil {
		return c.abort(err)
	}
	if _, err := c.readHeader(); err != nil {
		return c.abort(err)
	}
	_, err := c.read()
	return c.abort(err)
}
