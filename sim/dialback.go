package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strings"

	"xmppneg/policy"
)

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
func dialbackErrorXML(from, to, condition, text string) string {
	return fmt.Sprintf("<db:result from='%s' to='%s' type='error'><error type='cancel'><%s xmlns='%s'/><text xmlns='%s'>%s</text></error></db:result>",
		esc(from), esc(to), condition, nsStanzaErr, nsStanzaErr, esc(text))
}

// receiveDialback answers <db:result/> with a key: it checks the request
// against its own policy, asks the authoritative server of the sender's
// domain over a separate connection, and answers valid, invalid or error.
func (s *side) receiveDialback(el *element, offered features) (bool, error) {
	s.step = StepDialback
	p := s.ep.cfg.Settings
	from, to := el.attr("from"), el.attr("to")
	refuse := func(cond, msg string) (bool, error) {
		return false, s.refuse(StepDialback, cond, msg, dialbackErrorXML(s.ep.cfg.Domain, from, cond, msg), "</stream:stream>")
	}
	switch {
	case !offered.Dialback && p.DialbackUsable() && p.TLS == policy.Required && !s.secure:
		return refuse("policy-violation", "dialback before TLS, which the receiver requires")
	case !offered.Dialback && !p.Dialback:
		return refuse("policy-violation", "the receiver has dialback off")
	case !offered.Dialback:
		return refuse("policy-violation", "the receiver has TLS and SASL both Required, which disables dialback")
	case to != s.ep.cfg.Domain:
		return refuse("item-not-found", fmt.Sprintf("this server is not %q", to))
	case from != s.peer:
		return refuse("improper-addressing", fmt.Sprintf("dialback for %q on a stream from %q", from, s.peer))
	}
	if err := s.stopAt(StepDialback); err != nil {
		return false, err
	}
	valid, f, closeVerify := s.verifyKey(from, strings.TrimSpace(el.Text))
	// The verify connection closes while the initiator is answered.
	s.background(closeVerify)
	if f != nil {
		cond := "remote-connection-failed"
		switch {
		case f.Step == StepTimeout:
			cond = "remote-server-timeout"
		case f.Condition == "remote-server-not-found":
			cond = f.Condition
		}
		_ = s.send(dialbackErrorXML(s.ep.cfg.Domain, from, cond, f.Message), "</stream:stream>")
		return false, failed{*f}
	}
	s.step = StepDialback
	if !valid {
		return false, s.refuse(StepDialback, "invalid", fmt.Sprintf("the authoritative server of %s says the dialback key is invalid", from),
			fmt.Sprintf("<db:result from='%s' to='%s' type='invalid'/>", esc(s.ep.cfg.Domain), esc(from)), "</stream:stream>")
	}
	if err := s.send(fmt.Sprintf("<db:result from='%s' to='%s' type='valid'/>", esc(s.ep.cfg.Domain), esc(from))); err != nil {
		return false, err
	}
	m := policy.TCPDialback
	if s.secure {
		m = policy.TLSDialback
	}
	s.tr.succeed(Receiver, m)
	return true, nil
}

// initiateDialback sends the dialback key and waits for the verdict.
func (s *side) initiateDialback(r xml.TokenReader) (bool, error) {
	s.step = StepDialback
	key := DialbackKey(s.ep.secret, s.peer, s.ep.cfg.Domain, s.streamID)
	if s.fault(WrongKey) {
		key = DialbackKey("not the secret", s.peer, s.ep.cfg.Domain, s.streamID)
	}
	if err := s.send(fmt.Sprintf("<db:result from='%s' to='%s'>%s</db:result>", esc(s.ep.cfg.Domain), esc(s.peer), key)); err != nil {
		return false, err
	}
	el, err := s.read(r)
	if err != nil {
		return false, err
	}
	if !el.is(nsDialback, "result") {
		return false, badFormat(fmt.Sprintf("expected <db:result/>, got %s", el))
	}
	switch el.attr("type") {
	case "valid":
		return true, nil
	case "invalid":
		return false, s.peerFail(StepDialback, "invalid", "the receiver says the dialback key is invalid")
	case "error":
		cond, text := "undefined-condition", ""
		if e := el.child("", "error"); e != nil {
			for _, c := range e.Children {
				if c.Name.Local == "text" {
					text = strings.TrimSpace(c.Text)
				} else {
					cond = c.Name.Local
				}
			}
		}
		step := StepDialback
		if strings.HasPrefix(cond, "remote-") {
			step = StepDialbackVerify
		}
		return false, s.peerFail(step, cond, orDefault(text, "the receiver answered with a dialback error"))
	}
	return false, badFormat(fmt.Sprintf("<db:result/> with type %q", el.attr("type")))
}
