package sim

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// STARTTLS (RFC 6120 §5): the rules of when it is offered and used, and
// both ends of the exchange and the handshake.

// startTLSFeature is <starttls/> in <stream:features/>. It is negotiated
// first and once, before any authentication, by named steps of the
// roles: secure (the initiating end, and a receiving end's verify
// connection) and serveStartTLS (the receiving end).
var startTLSFeature = streamFeature{
	names: []xml.Name{{Space: nsTLS, Local: "starttls"}},
	offer: func(rs *receiverState, authenticated bool, f *features) {
		c := rs.c
		if authenticated || c.secure {
			return
		}
		f.StartTLS, f.TLSRequired = startTLSOffer(c.ep.cfg.Settings, c.ep.cert != nil)
		f.TLSRequired = f.TLSRequired && !c.ep.fault(OmitRequired)
	},
	list: func(b *strings.Builder, f features) {
		if !f.StartTLS {
			return
		}
		b.WriteString("<starttls xmlns='" + nsTLS + "'>")
		if f.TLSRequired {
			b.WriteString("<required/>")
		}
		b.WriteString("</starttls>")
	},
	parse: func(el *element, f *features) {
		f.StartTLS = true
		f.TLSRequired = el.child("", "required") != nil
	},
	describe: func(f features) string {
		switch {
		case !f.StartTLS:
			return ""
		case f.TLSRequired:
			return "starttls (required)"
		}
		return "starttls"
	},
	offered: func(f features) bool { return f.StartTLS },
}

// startTLSOffer says whether a receiving end offers STARTTLS on a plain
// stream, and whether with <required/>: when its TLS is not NotSupported
// and it has a certificate to present; required when TLS is Required
// (unless its behaviour omits the marker, as jabberd2 does).
func startTLSOffer(p policy.Settings, hasCert bool) (offer, required bool) {
	offer = p.TLS != policy.NotSupported && (hasCert || p.NoCertTLS != policy.NoCertTLSWithhold)
	return offer, offer && p.TLS == policy.Required && p.RequiredMarker == policy.RequiredMarkerSend
}

// tlsChoice is what a connecting end decides about TLS on a plain stream.
type tlsChoice uint8

const (
	tlsSkip tlsChoice = iota // go on without TLS
	tlsUse                   // STARTTLS, as offered
	tlsTry                   // STARTTLS although it is not offered
	tlsWait                  // say nothing more and wait (jabberd2 with require_tls)
)

// startTLSChoice is what a connecting end with settings p does about TLS
// on a plain stream given the offer f: use it, go on without it, or,
// when TLS is required and cannot be had, what its behaviour says: give
// up with a stream error (at the starttls step, or at the stream step
// as ejabberd does), try <starttls/> anyway (Prosody), or wait.
func startTLSChoice(p policy.Settings, f features, me, them outcome.Side) (tlsChoice, *streamError) {
	giveUp := func(cond outcome.Condition, text string) (tlsChoice, *streamError) {
		step := outcome.StepStartTLS
		if p.MissingTLS == policy.MissingTLSGiveUpAtStream {
			step = outcome.StepStream
		}
		return tlsSkip, &streamError{cond: cond, step: step, text: text}
	}
	switch {
	case f.StartTLS && p.TLS != policy.NotSupported:
		return tlsUse, nil
	case f.TLSRequired:
		return giveUp(outcome.UnsupportedFeature, fmt.Sprintf("%s requires TLS but %s does not support it (TLS NotSupported)", them, me))
	case p.TLS == policy.Required && p.MissingTLS == policy.MissingTLSTry:
		return tlsTry, nil
	case p.TLS == policy.Required && p.MissingTLS == policy.MissingTLSWait:
		return tlsWait, nil
	case p.TLS == policy.Required:
		return giveUp(outcome.PolicyViolation, fmt.Sprintf("%s requires TLS but the %s does not offer STARTTLS", me, them))
	}
	return tlsSkip, nil
}

// serveStartTLS answers <starttls/> and runs the server handshake.
func (rs *receiverState) serveStartTLS() error {
	c := rs.c
	c.step = outcome.StepStartTLS
	if !rs.offer.StartTLS && !c.secure && c.ep.cfg.Settings.UnofferedStartTLS == policy.UnofferedStartTLSIgnore {
		// Left unanswered (jabberd2 without a certificate): the peer is
		// the one to give up; anything else it sends is read and ignored.
		_ = c.raw.SetReadDeadline(time.Now().Add(2 * c.ep.timeout))
		for {
			if _, err := c.read(); err != nil {
				return c.abort(err)
			}
		}
	}
	if !rs.offer.StartTLS {
		why := "TLS NotSupported"
		switch {
		case c.secure:
			why = "the stream is TLS-protected already"
		case c.ep.cert == nil:
			why = "no certificate"
		}
		return c.refuse(outcome.StartTLSFailure, fmt.Sprintf("%s sent <starttls/> but the %s did not offer it (%s)", c.them, c.me, why),
			"<failure xmlns='"+nsTLS+"'/>", closeTag)
	}
	if err := rs.stopAt(outcome.StepStartTLS); err != nil {
		return err
	}
	if c.ep.cert == nil && c.ep.cfg.Settings.NoCertTLS == policy.NoCertTLSOfferAndRefuse {
		return c.refuse(outcome.StartTLSFailure, fmt.Sprintf("the %s has no certificate: it offered STARTTLS and refuses it", c.me),
			"<failure xmlns='"+nsTLS+"'/>", closeTag)
	}
	if c.ep.fault(StartTLSFailure) {
		return c.refuse(outcome.StartTLSFailure, "the receiver offered STARTTLS and then refused it (fault starttls-failure)",
			"<failure xmlns='"+nsTLS+"'/>", closeTag)
	}
	if err := c.send("<proceed xmlns='" + nsTLS + "'/>"); err != nil {
		return c.abort(err)
	}
	return rs.tls.serverHandshake()
}

// directTLS runs the client handshake at once on a connection to a
// direct TLS target (XEP-0368), before any stream.
func (o *connecting) directTLS() error {
	c := o.c
	if !c.directTLS {
		return nil
	}
	return o.tls.clientHandshake([]string{alpnXMPPServer})
}

// startTLS asks for TLS and runs the client handshake.
func (o *connecting) startTLS() error {
	c := o.c
	c.step = outcome.StepStartTLS
	if err := c.send("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
		return c.abort(err)
	}
	el, err := c.read()
	if err != nil {
		return c.abort(err)
	}
	switch {
	case el.is(nsTLS, "proceed"):
	case el.is(nsTLS, "failure"):
		err := c.peerFailed(outcome.StartTLSFailure, "the %s answered <starttls/> with <failure/>", c.them)
		c.closeStream()
		return err
	default:
		return c.abort(badFormat(fmt.Sprintf("expected <proceed/> or <failure/>, got %s", el)))
	}
	return o.tls.clientHandshake(nil)
}

// secure applies the STARTTLS rules to the offer of the current stream:
// when both ends allow TLS it starts it, reopens the stream with reopen
// and refuses the receiver's certificate after TLS if its behaviour
// says so; when one end requires TLS that the other cannot do, it does
// what its behaviour says.
func (o *connecting) secure(reopen func() error) error {
	c := o.c
	if c.secure {
		// Direct TLS: the stream was opened over TLS already.
		return o.refuseServerAfterTLS()
	}
	choice, refusal := startTLSChoice(c.ep.cfg.Settings, o.offer, c.me, c.them)
	switch {
	case refusal != nil:
		return c.abort(refusal)
	case choice == tlsSkip:
		return nil
	case choice == tlsWait:
		c.step = outcome.StepStartTLS
		return c.waitSilently()
	}
	if err := o.startTLS(); err != nil {
		return err
	}
	if err := reopen(); err != nil {
		return err
	}
	return o.refuseServerAfterTLS()
}

// refuseServerAfterTLS refuses an invalid server certificate once the
// stream has been reopened over TLS, as the end's behaviour says: with
// <not-authorized/> (Prosody's s2s_secure_auth), or by hanging up
// (ejabberd without dialback).
func (o *connecting) refuseServerAfterTLS() error {
	c := o.c
	if o.tls.certErr == nil || c.headerSent && c.closed {
		return nil
	}
	c.step = outcome.StepStream
	switch c.ep.cfg.Settings.RefuseServer {
	case policy.ServerRefusalAfterTLS:
		return c.abort(&streamError{cond: outcome.NotAuthorized, text: fmt.Sprintf("the %s's certificate is not valid: %v", c.them, o.tls.certErr)})
	case policy.ServerRefusalClose:
		err := c.fail(outcome.ConnectionClosed, "hung up after TLS: the %s's certificate is not valid: %v", c.them, o.tls.certErr)
		c.raw.Close()
		return err
	}
	return nil
}
