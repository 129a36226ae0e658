package sim

import (
	"context"
	"crypto/hmac"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"xmppneg/policy"
)

// verifyKey asks the authoritative server of originating, over a
// connection of its own, whether key is right for the current stream.
// It returns the answer, or the failure that kept it from getting one,
// and a function that closes the verify connection: the caller answers
// its initiator first, so that the close is off the critical path.
func (s *side) verifyKey(originating, key string) (valid bool, f *Failure, done func()) {
	s.step = StepDialbackVerify
	v := &side{ep: s.ep, role: Receiver, peerRole: Authoritative, conn: "verify", peer: originating,
		tr: s.tr, step: StepTCP, askKey: key, askID: s.streamID}
	done = func() {}
	fail := func(err error) (bool, *Failure, func()) {
		fe, ok := err.(failed)
		if !ok {
			fe = v.abort(err).(failed)
		}
		return false, &fe.f, done
	}
	// Leave time to answer the initiator before its own deadline passes.
	deadline := time.Now().Add(time.Until(s.deadline) * 6 / 10)
	ctx, cancel := context.WithDeadline(s.ep.ctx, deadline)
	addr, err := s.ep.cfg.Net.Resolve(ctx, originating)
	if err != nil {
		cancel()
		return fail(v.fail(StepDialbackVerify, "remote-server-not-found", fmt.Sprintf("cannot resolve the authoritative server of %s: %v", originating, err)))
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		cancel()
		return fail(v.fail(StepDialbackVerify, "remote-connection-failed", fmt.Sprintf("cannot connect to the authoritative server of %s at %s: %v", originating, addr, err)))
	}
	v.raw = raw
	v.c = &recConn{Conn: raw, tr: s.tr, reads: s.c.reads}
	v.relabel()
	l := s.ep.cfg.Net.track(raw.LocalAddr().String(), s.tr, "verify")
	stop := arm(ctx, raw, deadline)
	var sess *xmpp.Session
	done = func() {
		if sess != nil {
			v.closeStream(sess)
		}
		stop()
		hangUp(raw, deadline)
		cancel()
		s.ep.cfg.Net.untrack(raw.LocalAddr().String(), l, deadline.Add(50*time.Millisecond))
	}
	sess, err = xmpp.NewSession(context.Background(), jid.MustParse(originating), jid.MustParse(s.ep.cfg.Domain), v.c, xmpp.S2S, v.initiate())
	if err != nil {
		sess = nil
		return fail(err)
	}
	return v.verdict, nil, done
}

// sendVerify sends <db:verify/> on a verify connection and reads the
// authoritative server's answer.
func (s *side) sendVerify(r xml.TokenReader) (xmpp.SessionState, io.ReadWriter, any, error) {
	s.step = StepDialbackVerify
	from, to, id := s.ep.cfg.Domain, s.peer, s.askID
	if s.fault(VerifySwapped) {
		from, to = to, from
	}
	if s.fault(VerifyWrongID) {
		id += "-not-this-one"
	}
	if err := s.send(fmt.Sprintf("<db:verify from='%s' to='%s' id='%s'>%s</db:verify>",
		esc(from), esc(to), esc(id), esc(s.askKey))); err != nil {
		return 0, nil, nil, s.abort(err)
	}
	el, err := s.read(r)
	if err != nil {
		return 0, nil, nil, s.abort(err)
	}
	if !el.is(nsDialback, "verify") || el.attr("id") != id {
		return 0, nil, nil, s.abort(badFormat(fmt.Sprintf("expected <db:verify id='%s'/>, got %s id=%q", id, el, el.attr("id"))))
	}
	switch el.attr("type") {
	case "valid":
		s.verdict = true
	case "invalid":
	default:
		cond := "undefined-condition"
		if e := el.child("", "error"); e != nil && len(e.Children) > 0 {
			cond = e.Children[0].Name.Local
		}
		return 0, nil, nil, s.abort(s.peerFail(StepDialbackVerify, cond, fmt.Sprintf("the authoritative server answered db:verify with type %q (%s)", el.attr("type"), cond)))
	}
	return xmpp.Ready, nil, nil, nil
}

// answerVerify is the authoritative server's side of a verify connection:
// it recomputes the key from its own secret and says whether it matches.
func (s *side) answerVerify(el *element) error {
	s.verified = true
	if s.role != Authoritative {
		// A foreign receiving server: only now is it known what this
		// connection is.
		s.role, s.peerRole, s.conn = Authoritative, Receiver, "verify"
		s.relabel()
	}
	s.step = StepDialbackVerify
	if s.ep.cfg.Settings.TLS == policy.Required && !s.secure {
		return policyViolation("db:verify before TLS, which the authoritative server requires")
	}
	if err := s.stopAt(StepDialbackVerify); err != nil {
		return err
	}
	receiving, originating, id := el.attr("from"), el.attr("to"), el.attr("id")
	if originating != s.ep.cfg.Domain {
		return s.send(fmt.Sprintf("<db:verify from='%s' to='%s' id='%s' type='error'><error type='cancel'><item-not-found xmlns='%s'/></error></db:verify>",
			esc(s.ep.cfg.Domain), esc(receiving), esc(id), nsStanzaErr))
	}
	want := DialbackKey(s.ep.secret, receiving, originating, id)
	typ := "invalid"
	if hmac.Equal([]byte(want), []byte(strings.TrimSpace(el.Text))) || s.fault(VerifyAlwaysValid) {
		typ = "valid"
	}
	return s.send(fmt.Sprintf("<db:verify from='%s' to='%s' id='%s' type='%s'/>", esc(originating), esc(receiving), esc(id), typ))
}
