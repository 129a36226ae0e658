package sim

import (
	"context"
	"crypto/hmac"
	"fmt"
	"strings"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// The verify connection of Server Dialback (XEP-0220 §2.3): the
// receiving server opens it to the authoritative server of the
// initiator's domain (verifierState) and asks with <db:verify/> whether
// the key it was given is right; the authoritative server
// (authoritativeState) recomputes the key with its secret and answers.

// verifierState is the receiving server's end of a verify connection.
type verifierState struct {
	connecting
	key, id string // the key to check and the id of the stream it was given on
	valid   bool
}

// handshake opens the verify connection's stream, secures it by the
// same rules as any stream this endpoint opens, and asks.
func (vs *verifierState) handshake() error {
	c := vs.c
	open := func() error { return vs.openStream(c.ep.cfg.Domain, c.peer, false) }
	if err := vs.directTLS(); err != nil {
		return err
	}
	if err := open(); err != nil {
		return err
	}
	if !vs.legacy {
		if err := vs.secure(open); err != nil {
			return err
		}
	}
	return vs.ask()
}

// ask sends <db:verify/> and reads the authoritative server's answer.
func (vs *verifierState) ask() error {
	c := vs.c
	c.step = outcome.StepDialbackVerify
	from, to, id := c.ep.cfg.Domain, c.peer, vs.id
	if c.ep.fault(VerifySwapped) {
		from, to = to, from
	}
	if c.ep.fault(VerifyWrongID) {
		id += "-not-this-one"
	}
	if err := c.send(fmt.Sprintf("<db:verify from='%s' to='%s' id='%s'>%s</db:verify>", esc(from), esc(to), esc(id), esc(vs.key))); err != nil {
		return c.abort(err)
	}
	el, err := c.read()
	for err == nil && vs.legacy && el.is(nsStreams, "features") {
		el, err = c.read() // a 1.0 server's features, not waited for
	}
	if err != nil {
		return c.abort(err)
	}
	if !el.is(nsDialback, "verify") || el.attr("id") != id {
		return c.abort(badFormat(fmt.Sprintf("expected <db:verify id='%s'/>, got %s id=%q", id, el, el.attr("id"))))
	}
	switch el.attr("type") {
	case "valid":
		vs.valid = true
	case "invalid":
	default:
		cond := outcome.UndefinedCondition
		if e := el.child("", "error"); e != nil {
			ec, _ := e.condition("")
			cond = orCondition(ec)
		}
		return c.peerFailed(cond, "the authoritative server answered db:verify with type %q (%s)", el.attr("type"), cond)
	}
	return nil
}

// verifyKey asks the authoritative server of originating whether key is
// right for the current stream. It returns the answer, or the failure
// that kept it from getting one, and a function that closes the verify
// connection: the caller answers its initiator first, so that the close
// is off the critical path.
func (rs *receiverState) verifyKey(originating, key string) (valid bool, f *outcome.Failure, done func()) {
	c := rs.c
	c.step = outcome.StepDialbackVerify
	release, ok := c.ep.takeOutbound()
	if !ok {
		err := c.record(outcome.Failure{Step: outcome.StepDialbackVerify, Condition: outcome.ResourceConstraint, By: c.me,
			Message: fmt.Sprintf("not asking the authoritative server of %s: %d connections opened on peers' behalf are open already", originating, cap(c.ep.outbound))})
		f := c.failure(err)
		return false, &f, func() {}
	}
	// Leave time to answer the initiator before its own deadline passes.
	deadline := time.Now().Add(time.Until(c.deadline) * 6 / 10)
	ctx, cancel := context.WithDeadline(c.ep.ctx, deadline)
	vc, hangUp, err := c.ep.dial(ctx, originating, c.tr, verifyConn, deadline)
	if err != nil {
		cancel()
		release()
		f := c.failure(err)
		return false, &f, func() {}
	}
	vs := &verifierState{connecting: newConnecting(vc), key: key, id: rs.streamID}
	done = func() {
		if vc.headerSent && !vc.closed {
			vc.closeStream()
			vc.drain()
		}
		hangUp()
		cancel()
		release()
	}
	if err := vs.handshake(); err != nil {
		f := vc.failure(err)
		return false, &f, done
	}
	return vs.valid, nil, done
}

// authoritativeState is the authoritative server's end of a verify
// connection: what an inbound connection becomes once its peer asks
// with <db:verify/>.
type authoritativeState struct {
	c *xconn
	r *receiverState // the inbound negotiation it grew out of
}

// serve answers el and any further <db:verify/> on the connection until
// the receiving server, having its answers, ends its stream.
func (as *authoritativeState) serve(el *element) error {
	c := as.c
	if c.me != outcome.Authoritative {
		// A foreign receiving server: only now is it known what this
		// connection is.
		c.becomes(verifyConn, outcome.Authoritative, outcome.Receiver)
	}
	for {
		if err := as.answer(el); err != nil {
			return c.abort(err)
		}
		var err error
		if el, err = c.read(); err != nil {
			if c.ended(err) {
				c.closeStream()
				return nil
			}
			return c.abort(err)
		}
		if el.is(nsDialback, "result") {
			// jabberd2 opens one connection for both: its verify
			// connection is also its own outbound route, which it
			// authenticates with a db:result of its own.
			if err := as.r.serveDialback(el); err != nil && err != errDropped {
				return err
			}
			as.r.serveAuthenticated()
			return nil
		}
		if !el.is(nsDialback, "verify") {
			return c.abort(&streamError{cond: outcome.UnsupportedStanzaType, text: fmt.Sprintf("unexpected %s on a verify connection", el)})
		}
	}
}

// answer recomputes the key of one <db:verify/> with the endpoint's own
// secret and says whether it matches.
func (as *authoritativeState) answer(el *element) error {
	c := as.c
	c.step = outcome.StepDialbackVerify
	if c.ep.cfg.Settings.TLS == policy.Required && !c.secure {
		return policyViolation("db:verify before TLS, which the authoritative server requires")
	}
	if err := as.r.stopAt(outcome.StepDialbackVerify); err != nil {
		return err
	}
	receiving, originating, id := el.attr("from"), el.attr("to"), el.attr("id")
	if originating != c.ep.cfg.Domain {
		return c.send(fmt.Sprintf("<db:verify from='%s' to='%s' id='%s' type='error'><error type='cancel'><item-not-found xmlns='%s'/></error></db:verify>",
			esc(c.ep.cfg.Domain), esc(receiving), esc(id), nsStanzaErr))
	}
	want := DialbackKey(c.ep.secret, receiving, originating, id)
	typ := "invalid"
	if hmac.Equal([]byte(want), []byte(strings.TrimSpace(el.Text))) || c.ep.fault(VerifyAlwaysValid) {
		typ = "valid"
	}
	c.tr.note(fmt.Sprintf("answered %s's db:verify for stream %s: %s", receiving, id, typ))
	return c.send(fmt.Sprintf("<db:verify from='%s' to='%s' id='%s' type='%s'/>", esc(originating), esc(receiving), esc(id), typ))
}
