package sim

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// receiverState is the negotiation of the receiving server on an
// inbound connection (RFC 6120 §4–§6, XEP-0178, XEP-0220 §2.2): it
// accepts the initiator's stream, offers what its policy allows, secures
// the stream when asked, authenticates the initiator with SASL EXTERNAL
// or with Server Dialback (asking the authoritative server over a verify
// connection of its own), and then serves the stanzas of the
// authenticated stream. A peer that sends <db:verify/> instead has
// opened a verify connection: authoritativeState answers it.
type receiverState struct {
	c        *xconn
	tls      tlsEnd   // the TLS of the connection, and what it found
	offer    features // what was offered on the current stream
	streamID string   // our id of the current stream
	// legacy is set when the initiator opened a pre-1.0 stream (RFC 6120
	// §4.7.5): no features, no TLS, dialback only.
	legacy bool
	// release ends our claim on the trace of the endpoint at the other
	// end, when it is one of ours (see Network.claim); nil otherwise.
	release func()
	bg      sync.WaitGroup // work started beside the negotiation
	// answering is set while an answer to a ping is on its way over a
	// stream of ours.
	answering atomic.Bool
	// bidi is set once the initiator asked for a bidirectional stream
	// (XEP-0288) where it was offered: stanzas to it then go back over
	// this stream.
	bidi bool
}

// read reads the initiator's next element during negotiation, taking a
// XEP-0288 request where <bidi/> was offered: it has no answer.
func (rs *receiverState) read() (*element, error) {
	c := rs.c
	for {
		el, err := c.read()
		if err != nil || !el.is(nsBidi, "bidi") || rs.offer.Bidi == "" {
			return el, err
		}
		rs.bidi = true
	}
}

// handshake runs the negotiation up to an authenticated stream, or to
// the end of a verify connection.
func (rs *receiverState) handshake() (authenticated bool, err error) {
	c := rs.c
	if c.directTLS {
		// Direct TLS (XEP-0368): TLS first. Who connects is known only
		// from the stream header, so the certificate's name is checked
		// then (acceptStream).
		rs.claim()
		if err := rs.tls.serverHandshake(); err != nil {
			return false, err
		}
	}
	if err := rs.acceptStream(true, false); err != nil {
		return false, err
	}
	el, err := rs.read()
	if err != nil {
		return false, c.abort(err)
	}
	if el.is(nsTLS, "starttls") {
		if err := rs.serveStartTLS(); err != nil {
			return false, err
		}
		if err := rs.acceptStream(false, false); err != nil {
			return false, err
		}
		if el, err = rs.read(); err != nil {
			return false, c.abort(err)
		}
	}
	// Authentication, by the method the initiator asks for: it may try
	// another on the same stream after a refusal (dialback after a
	// refused EXTERNAL).
	for {
		switch a := requestedMethod(el); {
		case a != nil:
			authenticated, err := a.serve(rs, el)
			if err != nil || authenticated {
				return authenticated, err
			}
		case el.is(nsDialback, "verify"):
			return false, (&authoritativeState{c: c, r: rs}).serve(el)
		case el.is(nsTLS, "starttls"):
			// Not offered (any more): refused.
			return false, rs.serveStartTLS()
		case isStanza(el):
			return false, c.abort(&streamError{cond: outcome.NotAuthorized, text: fmt.Sprintf("<%s/> stanza before authentication", el.Name.Local)})
		default:
			return false, c.abort(&streamError{cond: outcome.UnsupportedStanzaType, text: fmt.Sprintf("unexpected %s during negotiation", el)})
		}
		if el, err = rs.read(); err != nil {
			return false, c.abort(err)
		}
	}
}

func isStanza(el *element) bool {
	return el.Name.Space == nsServer && (el.Name.Local == "iq" || el.Name.Local == "message" || el.Name.Local == "presence")
}

// acceptStream reads the initiator's stream header, checks its
// addresses, and answers with our header and features (RFC 6120 §4.2,
// §4.3.2): what our policy offers, or nothing once the initiator is
// authenticated.
func (rs *receiverState) acceptStream(first, authenticated bool) error {
	c := rs.c
	c.step = outcome.StepStream
	if err := rs.stopAt(outcome.StepStream); err != nil {
		return err
	}
	h, err := c.readHeader()
	if err == nil && first && h.From != "" {
		if derr := CheckDomain(h.From); derr != nil {
			// Never adopted as the peer's name: it would be printed.
			return c.abort(&streamError{cond: outcome.InvalidFrom, text: "the stream header's 'from' is not a domain: " + derr.Error()})
		}
	}
	if first {
		c.peer, rs.legacy = h.From, h.Legacy
		if c.directTLS {
			c.relabel()
		} else {
			rs.claim()
		}
	}
	if err != nil {
		return c.abort(err)
	}
	domain := c.ep.cfg.Domain
	switch {
	case first && h.To != domain && !(h.Legacy && h.To == ""):
		// A pre-1.0 header may name no one: db:result will.
		return c.abort(&streamError{cond: outcome.HostUnknown, text: fmt.Sprintf("this server is %s, not %q", domain, h.To)})
	case first && h.From == "" && !h.Legacy:
		return c.abort(&streamError{cond: outcome.InvalidFrom, text: "a server-to-server stream header must name its sender in 'from'"})
	case !first && (h.From != c.peer || h.To != domain):
		return c.abort(&streamError{cond: outcome.InvalidFrom, text: fmt.Sprintf("the restarted stream is from %q to %q; it was from %q to %q", h.From, h.To, c.peer, domain)})
	}
	if rs.streamID == "" || !c.ep.fault(ReuseStreamID) {
		rs.streamID = c.ep.newID()
	}
	if c.name == mainConn {
		c.tr.streamID(rs.streamID)
	}
	c.headerSent = true
	hdr := headerXML(domain, c.peer, rs.streamID)
	switch {
	case rs.legacy:
		// Pre-1.0 (RFC 6120 §4.7.5): answered in kind, without features.
		return c.abort(c.send(legacyHeaderXML(domain, c.peer, rs.streamID)))
	case authenticated:
		// What is still on offer after SASL: dialback for more domains.
		return c.abort(c.send(hdr, rs.features(true).xml()))
	case first && c.directTLS && rs.tls.peerCert != nil && rs.tls.checkPeerName() != nil && c.ep.cfg.Settings.Refuse == policy.RefuseAtHandshake:
		// The name could not be checked during the handshake; refused at
		// once now that it is known.
		if err := c.send(hdr); err != nil {
			return c.abort(err)
		}
		return c.abort(&streamError{cond: outcome.NotAuthorized, text: "the " + c.them.String() + "'s certificate does not name it: " + rs.tls.certErr.Error()})
	case c.secure && c.ep.cfg.Settings.Refuse == policy.RefuseAfterTLS && (rs.tls.peerCert == nil || rs.tls.certErr != nil):
		// As Prosody's s2s_secure_auth: only peers with a valid
		// certificate, told right after TLS.
		why := "no certificate was presented"
		if rs.tls.certErr != nil {
			why = rs.tls.certErr.Error()
		}
		if err := c.send(hdr); err != nil {
			return c.abort(err)
		}
		return c.abort(&streamError{cond: outcome.NotAuthorized, text: "the " + c.them.String() + "'s certificate could not be validated: " + why})
	}
	rs.offer = rs.features(false)
	if c.secure && rs.offer.empty() && c.ep.cfg.Settings.NoFeatures == policy.NoFeaturesClose {
		if err := c.send(hdr); err != nil {
			return c.abort(err)
		}
		return c.abort(&streamError{cond: outcome.UndefinedCondition, text: "No stream features to offer"})
	}
	return c.abort(c.send(hdr, rs.offer.xml()))
}

// features is what the receiving end offers on the current stream, from
// its own settings and what it knows of the peer: what each of
// streamFeatures offers, after SASL (authenticated) as before.
func (rs *receiverState) features(authenticated bool) features {
	var f features
	for _, sf := range streamFeatures {
		sf.offer(rs, authenticated, &f)
	}
	return f
}

// claim joins the trace of the endpoint at the other end of the
// connection, when it is one of ours.
func (rs *receiverState) claim() {
	c := rs.c
	tr, done, conn, ok := c.ep.cfg.Net.claim(c.raw.RemoteAddr().String())
	if !ok {
		c.relabel()
		return
	}
	// What was read before the claim (the peer's stream header, with
	// RecordReads) belongs to the negotiation's transcript too.
	before := c.tr.transcript()
	c.tr, rs.release = tr, done
	if conn == verifyConn {
		c.becomes(verifyConn, outcome.Authoritative, outcome.Receiver)
	} else {
		c.relabel()
	}
	for _, e := range before {
		if e.Read {
			e.Conn, e.From, e.To = c.name, c.labelOf, c.labelMe
			tr.add(e)
		}
	}
}

// background runs f beside the negotiation; the connection's handler
// waits for it before it ends.
func (rs *receiverState) background(f func()) {
	rs.bg.Add(1)
	go func() {
		defer rs.bg.Done()
		f()
	}()
}

// stopAt carries out the SilentAt and CloseAt faults at step: it returns
// nil when the endpoint goes on, or an error once it has gone silent
// (until the peer gives up) or closed the connection. Neither is
// recorded: the peer is the one to notice.
func (rs *receiverState) stopAt(step outcome.Step) error {
	c := rs.c
	switch step {
	case c.ep.cfg.Faults.SilentAt:
		// A deadline later than the peer's, so that the peer sees silence
		// rather than a close.
		_ = c.raw.SetReadDeadline(time.Now().Add(2 * c.ep.timeout))
		buf := make([]byte, 512)
		for {
			if _, err := c.raw.Read(buf); err != nil {
				return &recorded{outcome.Failure{Step: step, Condition: outcome.SilentOnPurpose, By: c.me, Message: "went silent on purpose"}}
			}
		}
	case c.ep.cfg.Faults.CloseAt:
		c.raw.Close()
		return &recorded{outcome.Failure{Step: step, Condition: outcome.ClosedOnPurpose, By: c.me, Message: "closed the connection on purpose"}}
	}
	return nil
}

// serveAuthenticated answers the stanzas of an authenticated inbound
// stream until the initiator closes it: pings, answers to our own pings,
// and the db:verify that Prosody sends on authenticated streams.
// takeAnswerSlot reserves the stream's one answer in flight and one of
// the endpoint's outbound connections.
func (rs *receiverState) takeAnswerSlot() (release func(), ok bool) {
	if !rs.answering.CompareAndSwap(false, true) {
		return nil, false
	}
	out, ok := rs.c.ep.takeOutbound()
	if !ok {
		rs.answering.Store(false)
		return nil, false
	}
	return func() { out(); rs.answering.Store(false) }, true
}

func (rs *receiverState) serveAuthenticated() {
	c := rs.c
	for {
		el, err := c.read()
		if err != nil {
			if c.ended(err) {
				c.closeStream()
				return
			}
			c.abort(err)
			return
		}
		switch {
		case el.is(nsServer, "iq") && el.attr("type") == "get" && el.child(nsPing, "ping") != nil:
			pong := fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", esc(el.attr("id")), esc(c.ep.cfg.Domain), esc(c.peer))
			if rs.bidi {
				// A bidirectional stream (XEP-0288): the answer goes back
				// over it, and needs no stream of ours.
				_ = c.send(pong)
				break
			}
			if rs.release != nil && c.ep.cfg.Settings.AnswerPings == policy.AnswerPingsAuto {
				// Endpoints of this harness take the answer on the same
				// stream, as if bidirectional (XEP-0288): it spares a second
				// negotiation per ping.
				_ = c.send(pong)
				break
			}
			// Streams are one-way: a real server wants the answer on a
			// stream of ours, and refuses it on its own with
			// <not-authorized/>.
			// One answer at a time per stream, within the endpoint's bound
			// on connections opened for peers: a peer sending pings must
			// not make it open a connection for each.
			release, ok := rs.takeAnswerSlot()
			if !ok {
				c.tr.note(fmt.Sprintf("ping %s from %s not answered: an answer to it is on its way already, or %d connections opened on peers' behalf are open", el.attr("id"), c.peer, cap(c.ep.outbound)))
				break
			}
			peer := c.peer
			rs.background(func() {
				defer release()
				c.ep.deliver(c.ep.ctx, peer, pong)
			})
		case el.is(nsServer, "iq") && (el.attr("type") == "result" || el.attr("type") == "error"):
			// The answer to a ping this endpoint sent on a stream of its own.
			c.ep.answer(el.attr("id"))
		case el.is(nsDialback, "verify"):
			// Prosody asks its db:verify only once its connection to the
			// authoritative server is authenticated.
			if err := (&authoritativeState{c: c, r: rs}).answer(el); err != nil {
				c.abort(err)
				return
			}
		}
	}
}
