package sim

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"xmppneg/policy"
)

// features is what a receiving side offers on one stream.
type features struct {
	StartTLS       bool
	TLSRequired    bool
	Mechanisms     []string
	Dialback       bool
	DialbackErrors bool
}

func (f features) has(mech string) bool {
	for _, m := range f.Mechanisms {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

func (f features) xml() string {
	var b strings.Builder
	b.WriteString("<stream:features>")
	if f.StartTLS {
		b.WriteString("<starttls xmlns='" + nsTLS + "'>")
		if f.TLSRequired {
			b.WriteString("<required/>")
		}
		b.WriteString("</starttls>")
	}
	if len(f.Mechanisms) > 0 {
		b.WriteString("<mechanisms xmlns='" + nsSASL + "'>")
		for _, m := range f.Mechanisms {
			b.WriteString("<mechanism>" + esc(m) + "</mechanism>")
		}
		b.WriteString("</mechanisms>")
	}
	if f.Dialback {
		b.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
	}
	b.WriteString("</stream:features>")
	return b.String()
}

// String lists the features as a person reads them:
// "starttls (required), EXTERNAL, dialback".
func (f features) String() string {
	var parts []string
	if f.StartTLS {
		p := "starttls"
		if f.TLSRequired {
			p += " (required)"
		}
		parts = append(parts, p)
	}
	if len(f.Mechanisms) > 0 {
		parts = append(parts, "SASL "+strings.Join(f.Mechanisms, " "))
	}
	if f.Dialback {
		parts = append(parts, "dialback")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func parseFeatures(el *element) features {
	var f features
	if st := el.child(nsTLS, "starttls"); st != nil {
		f.StartTLS = true
		f.TLSRequired = st.child("", "required") != nil
	}
	if ms := el.child(nsSASL, "mechanisms"); ms != nil {
		for _, m := range ms.Children {
			if m.Name.Local == "mechanism" {
				f.Mechanisms = append(f.Mechanisms, strings.TrimSpace(m.Text))
			}
		}
	}
	if db := el.child(nsDialbackFeat, "dialback"); db != nil {
		f.Dialback = true
		f.DialbackErrors = db.child("", "errors") != nil
	}
	return f
}

// offer computes what the receiving side offers on the current stream,
// from its own settings and what it knows of the peer.
func (s *side) offer() features {
	p := s.ep.cfg.Settings
	var f features
	if !s.secure && p.TLS != policy.NotSupported && s.ep.cert != nil {
		f.StartTLS, f.TLSRequired = true, p.TLS == policy.Required && !s.fault(OmitRequired)
	}
	if !s.secure && s.fault(OfferSASLPlain) {
		f.Mechanisms = []string{"EXTERNAL"}
	}
	// SASL never before TLS; EXTERNAL only to a peer that showed a certificate.
	if s.secure && p.SASL != policy.NotSupported && s.peerCert != nil {
		f.Mechanisms = []string{"EXTERNAL"}
	}
	if p.DialbackUsable() && (s.secure || p.TLS != policy.Required) {
		f.Dialback, f.DialbackErrors = true, true
	}
	return f
}

func setInfo(info *stream.Info, from, to, id string) {
	info.From, _ = jid.Parse(from)
	info.To, _ = jid.Parse(to)
	info.ID = id
	info.XMLNS = stanza.NSServer
	info.Version = stream.DefaultVersion
}

// receive is the negotiator of the receiving side. mellium calls it once
// for every stream the peer opens on the connection.
func (s *side) receive() xmpp.Negotiator {
	first := true
	return func(_ context.Context, in, out *stream.Info, sess *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		r := sess.TokenReader()
		defer r.Close()
		s.step = StepStream
		if err := s.stopAt(StepStream); err != nil {
			return 0, nil, nil, err
		}
		h, err := readHeader(r)
		if err != nil {
			return 0, nil, nil, s.answerHeaderError(err, first)
		}
		if first {
			s.peer = h.From
			s.claim()
			switch {
			case h.To != s.ep.cfg.Domain:
				return 0, nil, nil, s.answerHeaderError(localError{"host-unknown", fmt.Sprintf("this server is %s, not %q", s.ep.cfg.Domain, h.To)}, true)
			case h.From == "":
				return 0, nil, nil, s.answerHeaderError(localError{"invalid-from", "a server-to-server stream header must name its sender in 'from'"}, true)
			}
			first = false
		} else if h.From != s.peer || h.To != s.ep.cfg.Domain {
			return 0, nil, nil, s.answerHeaderError(localError{"invalid-from", fmt.Sprintf("the restarted stream is from %q to %q; it was from %q to %q", h.From, h.To, s.peer, s.ep.cfg.Domain)}, false)
		}
		if s.streamID == "" || !s.fault(ReuseStreamID) {
			s.streamID = newStreamID()
		}
		setInfo(in, h.From, h.To, "")
		setInfo(out, s.ep.cfg.Domain, s.peer, s.streamID)
		if s.conn == "main" {
			s.tr.streamID(s.streamID)
		}
		hdr := headerXML(s.ep.cfg.Domain, s.peer, s.streamID)
		if sess.State()&xmpp.Authn != 0 {
			// Nothing is left to negotiate after SASL.
			return xmpp.Ready, nil, nil, s.abort(s.send(hdr, "<stream:features/>"))
		}
		offered := s.offer()
		if err := s.send(hdr, offered.xml()); err != nil {
			return 0, nil, nil, s.abort(err)
		}
		for {
			el, err := s.read(r)
			if err != nil {
				if s.verified && isClosed(err) {
					return 0, nil, nil, err
				}
				return 0, nil, nil, s.abort(err)
			}
			switch {
			case el.is(nsTLS, "starttls"):
				rw, err := s.receiveStartTLS(offered)
				if err != nil {
					return 0, nil, nil, s.abort(err)
				}
				return xmpp.Secure, rw, nil, nil
			case el.is(nsSASL, "auth"):
				ok, err := s.receiveSASL(el, offered)
				if err != nil {
					return 0, nil, nil, s.abort(err)
				}
				if ok {
					return xmpp.Authn, s.c, nil, nil
				}
			case el.is(nsDialback, "result"):
				ok, err := s.receiveDialback(el, offered)
				if err != nil {
					return 0, nil, nil, s.abort(err)
				}
				if ok {
					return xmpp.Authn | xmpp.Ready, nil, nil, nil
				}
			case el.is(nsDialback, "verify"):
				if err := s.answerVerify(el); err != nil {
					return 0, nil, nil, s.abort(err)
				}
			case el.is(nsServer, "iq") || el.is(nsServer, "message") || el.is(nsServer, "presence"):
				return 0, nil, nil, s.abort(localError{"not-authorized", fmt.Sprintf("<%s/> stanza before authentication", el.Name.Local)})
			default:
				return 0, nil, nil, s.abort(localError{"unsupported-stanza-type", fmt.Sprintf("unexpected %s during negotiation", el)})
			}
		}
	}
}

// answerHeaderError answers a bad or missing stream header: a stream
// error must come inside a stream, so one is opened first if needed.
func (s *side) answerHeaderError(err error, first bool) error {
	le, ok := err.(localError)
	if !ok {
		return s.abort(err)
	}
	if first {
		_ = s.send(headerXML(s.ep.cfg.Domain, s.peer, newStreamID()))
	}
	return s.abort(le)
}

// stopAt carries out the SilentAt and CloseAt faults at step: it returns
// nil when the endpoint goes on, or an error once it has gone silent
// (until the peer gives up) or closed the connection. Neither is recorded:
// the peer is the one to notice.
func (s *side) stopAt(step Step) error {
	switch step {
	case s.ep.cfg.Faults.SilentAt:
		return s.goSilentNow()
	case s.ep.cfg.Faults.CloseAt:
		s.raw.Close()
		return failed{Failure{Step: step, Condition: "closed", By: s.role, Message: "closed the connection on purpose"}}
	}
	return nil
}

// initiate is the negotiator of the initiating side: it opens each stream,
// reads the offered features and chooses among them by its own policy.
func (s *side) initiate() xmpp.Negotiator {
	return func(_ context.Context, in, out *stream.Info, sess *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		r := sess.TokenReader()
		defer r.Close()
		s.step = StepStream
		from, to := s.ep.cfg.Domain, s.peer
		switch {
		case s.fault(OmitFrom):
			from = ""
		case s.fault(OmitTo):
			to = ""
		case s.fault(ChangeFrom) && s.secure:
			from = "someone-else." + from
		}
		if s.fault(NoRestart) && s.secure {
			// Go on as if the stream had not been secured.
			if err := s.send("<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>=</auth>"); err != nil {
				return 0, nil, nil, s.abort(err)
			}
			_, err := s.read(r)
			return 0, nil, nil, s.abort(err)
		}
		if err := s.send(headerXML(from, to, "")); err != nil {
			return 0, nil, nil, s.abort(err)
		}
		h, err := readHeader(r)
		if err != nil {
			return 0, nil, nil, s.abort(err)
		}
		if h.From != "" && h.From != s.peer {
			return 0, nil, nil, s.abort(localError{"invalid-from", fmt.Sprintf("connected to %s but the stream is from %q", s.peer, h.From)})
		}
		if h.ID == "" {
			return 0, nil, nil, s.abort(badFormat("the receiver's stream header has no id"))
		}
		for _, id := range s.seenIDs {
			if id == h.ID {
				return 0, nil, nil, s.abort(policyViolation(fmt.Sprintf("the %s reused stream id %s on the restarted stream", s.peerRole, id)))
			}
		}
		s.seenIDs = append(s.seenIDs, h.ID)
		s.streamID = h.ID
		setInfo(in, s.peer, s.ep.cfg.Domain, h.ID)
		setInfo(out, s.ep.cfg.Domain, s.peer, "")
		if s.conn == "main" {
			s.tr.streamID(h.ID)
		}
		el, err := s.read(r)
		if err != nil {
			return 0, nil, nil, s.abort(err)
		}
		if !el.is(nsStreams, "features") {
			return 0, nil, nil, s.abort(badFormat(fmt.Sprintf("expected <stream:features/>, got %s", el)))
		}
		if sess.State()&xmpp.Authn != 0 {
			return xmpp.Ready, nil, nil, nil
		}
		f := parseFeatures(el)
		if s.conn == "main" {
			s.tr.offer(s.secure, f.String())
		}
		if err := s.misbehave(r, f); err != nil {
			return 0, nil, nil, s.abort(err)
		}
		if !s.secure {
			p := s.ep.cfg.Settings
			switch {
			case f.StartTLS && p.TLS != policy.NotSupported:
				rw, err := s.initiateStartTLS(r)
				if err != nil {
					return 0, nil, nil, s.abort(err)
				}
				return xmpp.Secure, rw, nil, nil
			case f.TLSRequired:
				s.step = StepStartTLS
				return 0, nil, nil, s.abort(localError{"unsupported-feature", "receiver requires TLS but " + string(s.role) + " does not support it (TLS NotSupported)"})
			case p.TLS == policy.Required:
				s.step = StepStartTLS
				return 0, nil, nil, s.abort(localError{"policy-violation", string(s.role) + " requires TLS but the " + string(s.peerRole) + " does not offer STARTTLS"})
			}
		}
		if s.conn == "verify" {
			return s.sendVerify(r)
		}
		return s.authenticate(r, f)
	}
}

// authenticate picks SASL EXTERNAL when both sides allow it and falls
// back to dialback when EXTERNAL is not possible or fails.
func (s *side) authenticate(r xml.TokenReader, f features) (xmpp.SessionState, io.ReadWriter, any, error) {
	p := s.ep.cfg.Settings
	var saslWhy string
	switch {
	case !s.secure && !f.has("EXTERNAL"):
		saslWhy = "no TLS, so no SASL EXTERNAL"
	case !s.secure:
		// Never a SASL exchange on a plain stream, whatever is offered.
		saslWhy = "SASL EXTERNAL was offered on a stream that is not TLS-protected"
	case !f.has("EXTERNAL"):
		saslWhy = "the receiver offered no SASL EXTERNAL"
	case p.SASL == policy.NotSupported:
		saslWhy = "the initiator has SASL NotSupported"
	case s.ep.cert == nil:
		saslWhy = "the initiator has no certificate"
	default:
		ok, err := s.initiateSASL(r)
		if err != nil {
			return 0, nil, nil, s.abort(err)
		}
		if ok {
			s.method = policy.SASLOverTLS
			return xmpp.Authn, s.c, nil, nil
		}
		saslWhy = "SASL EXTERNAL was refused"
	}
	var dbWhy string
	switch {
	case !f.Dialback:
		dbWhy = "the receiver offered no dialback"
	case !p.Dialback:
		dbWhy = "the initiator has dialback off"
	case !p.DialbackUsable():
		dbWhy = "the initiator has TLS and SASL both Required, which disables dialback"
	default:
		ok, err := s.initiateDialback(r)
		if err != nil {
			return 0, nil, nil, s.abort(err)
		}
		if ok {
			s.method = policy.TCPDialback
			if s.secure {
				s.method = policy.TLSDialback
			}
			return xmpp.Authn | xmpp.Ready, nil, nil, nil
		}
		dbWhy = "dialback failed"
	}
	s.step = StepDialback
	if f.has("EXTERNAL") {
		s.step = StepSASL
	}
	return 0, nil, nil, s.abort(localError{"policy-violation", "no common authentication method: " + saslWhy + "; " + dbWhy})
}

// misbehave carries out the initiating side's faults that act right after
// the first features: it returns nil when there is none to carry out, or
// the error the peer's answer came to.
func (s *side) misbehave(r xml.TokenReader, f features) error {
	if s.secure || s.conn != "main" {
		return nil
	}
	var el string
	switch {
	case s.fault(AuthBeforeTLS):
		s.step = StepSASL
		el = "<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>=</auth>"
	case s.fault(StanzaBeforeAuth):
		el = fmt.Sprintf("<message from='%s' to='someone@%s'><body>before authentication</body></message>", esc(s.ep.cfg.Domain), esc(s.peer))
	case s.fault(DialbackBeforeTLS):
		s.step = StepDialback
		ok, err := s.initiateDialback(r)
		if ok {
			return fmt.Errorf("the receiver accepted dialback on a plain stream")
		}
		return err
	case s.fault(MalformedXML):
		el = "<message><body>not well-formed</message>"
	case s.fault(Oversize):
		el = fmt.Sprintf("<message from='%s' to='someone@%s'><body>%s</body></message>", esc(s.ep.cfg.Domain), esc(s.peer), strings.Repeat("x", 2*s.ep.cfg.Limits.orDefault().MaxElementBytes))
	default:
		return nil
	}
	if err := s.send(el); err != nil {
		return err
	}
	for {
		el, err := s.read(r)
		if err != nil {
			return err
		}
		if el.is(nsSASL, "failure") {
			cond := "not-authorized"
			for _, c := range el.Children {
				if c.Name.Local != "text" {
					cond = c.Name.Local
				}
			}
			s.peerFail(StepSASL, cond, "the receiver refused <auth/> on a plain stream")
		}
	}
}
