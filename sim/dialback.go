package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// Server Dialback (XEP-0220) between the initiating and the receiving
// server: the rules of when it is offered and used, the key (XEP-0185),
// and both ends of db:result. The verify connection to the
// authoritative server is in verify.go.

// dialbackFeature is XEP-0220's <dialback/> in <stream:features/>, and
// Server Dialback, the method an initiator falls back to.
var dialbackFeature = streamFeature{
	names: []xml.Name{{Space: nsDialbackFeat, Local: "dialback"}},
	offer: func(rs *receiverState, _ bool, f *features) {
		// Offered after SASL too, for more domains on the same stream
		// (XEP-0220 §2.4), as Prosody and ejabberd do.
		f.Dialback, _ = dialbackOffer(rs.c.ep.cfg.Settings, rs.c.secure)
		f.DialbackErrors = f.Dialback
	},
	list: func(b *strings.Builder, f features) {
		if f.Dialback {
			b.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
		}
	},
	parse: func(el *element, f *features) {
		f.Dialback = true
		f.DialbackErrors = el.child("", "errors") != nil
	},
	describe: func(f features) string {
		if !f.Dialback {
			return ""
		}
		return "dialback"
	},
	offered: func(f features) bool { return f.Dialback },
	auth: &authMethod{
		step:    outcome.StepDialback,
		request: xml.Name{Space: nsDialback, Local: "result"},
		choose: func(hs *initiatorState) (bool, string) {
			return dialbackChoice(hs.c.ep.cfg.Settings, hs.offer)
		},
		negotiate: func(hs *initiatorState) (outcome.Method, error) {
			if err := hs.doDialback(); err != nil {
				return 0, err
			}
			return dialbackMethod(hs.c.secure), nil
		},
		serve: func(rs *receiverState, el *element) (bool, error) {
			err := rs.serveDialback(el)
			if err == errDropped {
				// Dropped without a word: the peer is the one to give up.
				_ = rs.c.raw.SetReadDeadline(time.Now().Add(2 * rs.c.ep.timeout))
				return false, nil
			}
			return err == nil, err
		},
	},
}

// dialbackOffer says whether a receiving end with settings p offers
// dialback on a stream, and why not when it does not: the document's M1
// rule (TLS and SASL both Required disable dialback), and no dialback
// before TLS when TLS is Required — except from a receiver that drops a
// plain db:result without a word (jabberd2), which advertises it anyway.
func dialbackOffer(p policy.Settings, secure bool) (offer bool, whyNot string) {
	switch {
	case !p.Dialback:
		return false, "the receiver has dialback off"
	case !p.DialbackUsable():
		return false, "the receiver has TLS and SASL both Required, which disables dialback"
	case !secure && p.TLS == policy.Required && !p.PlainDialback.Advertised():
		return false, "dialback before TLS, which the receiver requires"
	}
	return true, ""
}

// dialbackChoice says whether a connecting end with settings p uses
// dialback from the offer f, and why not when it does not. Some servers
// send db:result whether it is offered or not (UnofferedDialback).
func dialbackChoice(p policy.Settings, f features) (use bool, whyNot string) {
	switch {
	case !f.Dialback && p.UnofferedDialback != policy.UnofferedDialbackSend:
		return false, "the receiver offered no dialback"
	case !p.Dialback:
		return false, "the initiator has dialback off"
	case !p.DialbackUsable():
		return false, "the initiator has TLS and SASL both Required, which disables dialback"
	}
	return true, ""
}

// dialbackMethod is the method dialback gives on a stream.
func dialbackMethod(secure bool) outcome.Method {
	if secure {
		return outcome.TLSDialback
	}
	return outcome.TCPDialback
}

// DialbackKey computes a Server Dialback key as XEP-0185 recommends:
// hex(HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " + streamID)).
func DialbackKey(secret, receiving, originating, streamID string) string {
	h := sha256.Sum256([]byte(secret))
	mac := hmac.New(sha256.New, []byte(hex.EncodeToString(h[:])))
	mac.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(mac.Sum(nil))
}

// dialbackErrorXML is a dialback error (XEP-0220 §2.4) with a stanza
// error condition.
func dialbackErrorXML(from, to string, condition outcome.Condition, text string) string {
	return fmt.Sprintf("<db:result from='%s' to='%s' type='error'><error type='cancel'><%s xmlns='%s'/><text xmlns='%s'>%s</text></error></db:result>",
		esc(from), esc(to), condition, nsStanzaErr, nsStanzaErr, esc(text))
}

// errDropped is what serveDialback returns when its behaviour drops the
// db:result without a word (jabberd2 with require_tls on a plain stream).
var errDropped = errors.New("db:result dropped")

// serveDialback answers <db:result/> with a key: it checks the request
// against its own policy, asks the authoritative server of the sender's
// domain over a verify connection of its own, and answers valid, invalid
// or error (or, as its behaviour may say, not at all).
func (rs *receiverState) serveDialback(el *element) error {
	c := rs.c
	c.step = outcome.StepDialback
	p := c.ep.cfg.Settings
	domain := c.ep.cfg.Domain
	from, to := el.attr("from"), el.attr("to")
	refuse := func(cond outcome.Condition, msg string) error {
		return c.refuse(cond, msg, dialbackErrorXML(domain, from, cond, msg), closeTag)
	}
	if !c.secure && p.TLS == policy.Required && p.DialbackUsable() && p.PlainDialback == policy.PlainDialbackDrop {
		return errDropped
	}
	if offered, why := dialbackOffer(p, c.secure); !rs.offer.Dialback && !(rs.legacy && offered) {
		if why == "" {
			why = "the receiver did not offer dialback"
		}
		if cond := p.DialbackOff.StreamError(); cond != "" && !p.Dialback {
			return c.raise(outcome.Condition(cond), why)
		}
		if !c.secure && p.TLS == policy.Required && p.PlainDialback == policy.PlainDialbackClose {
			return c.raise(outcome.PolicyViolation, why)
		}
		return refuse(outcome.PolicyViolation, why)
	}
	if rs.legacy && c.peer == "" {
		// A pre-1.0 stream may name its sender only here.
		if err := CheckDomain(from); err != nil {
			return refuse(outcome.ImproperAddressing, "db:result 'from' is not a domain: "+err.Error())
		}
		c.peer = from
		c.relabel()
	}
	switch {
	case to != domain:
		return refuse(outcome.ItemNotFound, fmt.Sprintf("this server is not %q", to))
	case from != c.peer:
		return refuse(outcome.ImproperAddressing, fmt.Sprintf("dialback for %q on a stream from %q", from, c.peer))
	}
	if err := rs.stopAt(outcome.StepDialback); err != nil {
		return err
	}
	valid, f, closeVerify := rs.verifyKey(from, strings.TrimSpace(el.Text))
	// The verify connection closes while the initiator is answered.
	rs.background(closeVerify)
	if f != nil {
		return rs.unverifiable(from, *f)
	}
	c.step = outcome.StepDialback
	if !valid {
		return c.refuse(outcome.DialbackInvalid, fmt.Sprintf("the authoritative server of %s says the dialback key is invalid", from),
			fmt.Sprintf("<db:result from='%s' to='%s' type='invalid'/>", esc(domain), esc(from)), closeTag)
	}
	if !c.secure && p.TLS == policy.Required && p.PlainDialback == policy.PlainDialbackVerifyThenClose {
		// Verified, and closed all the same: the stream is not encrypted.
		return c.raise(outcome.PolicyViolation, "Encrypted server-to-server communication is required but was not used")
	}
	if err := c.send(fmt.Sprintf("<db:result from='%s' to='%s' type='valid'/>", esc(domain), esc(from))); err != nil {
		return c.abort(err)
	}
	c.tr.succeed(outcome.Receiver, dialbackMethod(c.secure))
	return nil
}

// unverifiable answers a db:result whose key the authoritative server
// could not be asked about (f says why), as the receiving end's behaviour
// says: a dialback error naming why (the verify connection's failure is
// the root cause), <remote-server-not-found/> whatever the cause
// (ejabberd), or no answer at all (Prosody). In the last two, what went
// wrong on the verify connection stays inside the receiver, as it does
// in those servers: the root cause is what the initiator is told.
func (rs *receiverState) unverifiable(from string, f outcome.Failure) error {
	c := rs.c
	domain := c.ep.cfg.Domain
	switch c.ep.cfg.Settings.Unverifiable {
	case policy.UnverifiableHang:
		c.tr.hideVerifyFailures()
		return c.waitSilently()
	case policy.UnverifiableServerNotFound:
		c.tr.hideVerifyFailures()
		c.step = outcome.StepDialbackVerify
		return c.refuse(outcome.RemoteServerNotFound, "could not verify the key: "+f.Message,
			dialbackErrorXML(domain, from, outcome.RemoteServerNotFound, f.Message), closeTag)
	}
	cond := outcome.RemoteConnectionFailed
	switch {
	case f.Step == outcome.StepTimeout:
		cond = outcome.RemoteServerTimeout
	case f.Condition == outcome.RemoteServerNotFound:
		cond = f.Condition
	}
	_ = c.send(dialbackErrorXML(domain, from, cond, f.Message), closeTag)
	return &recorded{f}
}

// doDialback sends the dialback key and waits for the verdict.
func (hs *initiatorState) doDialback() error {
	c := hs.c
	c.step = outcome.StepDialback
	secret := c.ep.secret
	if c.ep.fault(WrongKey) {
		secret = "not the secret"
	}
	key := DialbackKey(secret, c.peer, c.ep.cfg.Domain, hs.streamID)
	if err := c.send(fmt.Sprintf("<db:result from='%s' to='%s'>%s</db:result>", esc(c.ep.cfg.Domain), esc(c.peer), key)); err != nil {
		return c.abort(err)
	}
	el, err := c.read()
	for err == nil && hs.legacy && el.is(nsStreams, "features") {
		// A 1.0 receiver's features, which a pre-1.0 initiator does not
		// wait for.
		el, err = c.read()
	}
	if err != nil {
		return c.abort(err)
	}
	if !el.is(nsDialback, "result") {
		return c.abort(badFormat(fmt.Sprintf("expected <db:result/>, got %s", el)))
	}
	switch el.attr("type") {
	case "valid":
		return nil
	case "invalid":
		return c.peerFailed(outcome.DialbackInvalid, "the receiver says the dialback key is invalid")
	case "error":
		cond, text := outcome.UndefinedCondition, ""
		if e := el.child("", "error"); e != nil {
			ec, et := e.condition("")
			cond, text = orCondition(ec), et
		}
		if cond == outcome.RemoteConnectionFailed || cond == outcome.RemoteServerNotFound || cond == outcome.RemoteServerTimeout {
			// The receiver could not reach our authoritative server.
			c.step = outcome.StepDialbackVerify
		}
		return c.peerFailed(cond, "%s", orDefault(text, "the receiver answered with a dialback error"))
	}
	return c.abort(badFormat(fmt.Sprintf("<db:result/> with type %q", el.attr("type"))))
}

// authenticateLegacy authenticates on a pre-1.0 stream: dialback at
// once, there being no features and no TLS.
func (hs *initiatorState) authenticateLegacy() error {
	c := hs.c
	p := c.ep.cfg.Settings
	if p.TLS == policy.Required {
		c.step = outcome.StepStartTLS
		return c.abort(policyViolation(fmt.Sprintf("%s requires TLS but the stream is pre-1.0, without TLS", c.me)))
	}
	if !p.DialbackUsable() {
		c.step = outcome.StepDialback
		return hs.noMethod("no common authentication method: a pre-1.0 stream has only dialback, which the initiator does not use")
	}
	if err := hs.doDialback(); err != nil {
		return err
	}
	hs.method = outcome.TCPDialback
	return nil
}
