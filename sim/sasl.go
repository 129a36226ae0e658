package sim

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"mellium.im/sasl"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// SASL EXTERNAL for server-to-server streams (RFC 6120 §6, XEP-0178):
// the rules of when it is offered and used, and both ends of the
// exchange.

// saslFeature is <mechanisms/> in <stream:features/>, and SASL
// EXTERNAL, the strongest authentication method.
var saslFeature = streamFeature{
	names: []xml.Name{{Space: nsSASL, Local: "mechanisms"}},
	offer: func(rs *receiverState, authenticated bool, f *features) {
		c := rs.c
		p := c.ep.cfg.Settings
		if authenticated {
			return
		}
		if !c.secure {
			if c.ep.fault(OfferSASLPlain) {
				f.Mechanisms = []string{"EXTERNAL"}
			} else if emptyMechanisms(p, c.secure) {
				f.Mechanisms = []string{}
			}
		}
		if saslOffer(p, c.secure, rs.tls.peerCert != nil, rs.tls.peerCert != nil && rs.tls.certErr == nil) {
			f.Mechanisms = []string{"EXTERNAL"}
		}
	},
	list: func(b *strings.Builder, f features) {
		if f.Mechanisms == nil {
			return
		}
		b.WriteString("<mechanisms xmlns='" + nsSASL + "'>")
		for _, m := range f.Mechanisms {
			b.WriteString("<mechanism>" + esc(m) + "</mechanism>")
		}
		b.WriteString("</mechanisms>")
	},
	parse: func(el *element, f *features) {
		f.Mechanisms = []string{}
		for _, m := range el.Children {
			if m.Name.Local == "mechanism" {
				f.Mechanisms = append(f.Mechanisms, strings.TrimSpace(m.Text))
			}
		}
	},
	describe: func(f features) string {
		if len(f.Mechanisms) == 0 {
			return ""
		}
		return "SASL " + strings.Join(f.Mechanisms, " ")
	},
	offered: func(f features) bool { return f.has("EXTERNAL") },
	auth: &authMethod{
		step:    outcome.StepSASL,
		request: xml.Name{Space: nsSASL, Local: "auth"},
		choose: func(hs *initiatorState) (bool, string) {
			c := hs.c
			return saslChoice(c.ep.cfg.Settings, c.secure, hs.offer, c.ep.cert != nil)
		},
		negotiate: (*initiatorState).doSASL,
		refused:   "SASL EXTERNAL was refused",
		serve:     (*receiverState).serveSASL,
	},
}

// saslOffer says whether a receiving end offers EXTERNAL: never before
// TLS; then, when its SASL is not NotSupported, as its behaviour says:
// when the peer showed a certificate in the handshake (XEP-0178 §3:
// nothing to authenticate with otherwise), only when that certificate
// validated (Prosody), or on every TLS stream (ejabberd).
func saslOffer(p policy.Settings, secure, peerShowedCert, certValid bool) bool {
	if !secure || p.SASL == policy.NotSupported {
		return false
	}
	switch p.ExternalOffer {
	case policy.ExternalIfCertValid:
		return certValid
	case policy.ExternalAlways:
		return true
	}
	return peerShowedCert
}

// emptyMechanisms says whether a receiving end with settings p lists an
// empty <mechanisms/> on a stream that is not TLS-protected: ejabberd
// (external_offer=always) lists its SASL mechanisms on every stream it
// does not require TLS on, and before TLS there are none it offers to a
// server (recorded: interop-ejabberd/knobs/starttls-optional/C1/harness-initiates;
// with s2s_use_starttls: required, only <starttls/>).
func emptyMechanisms(p policy.Settings, secure bool) bool {
	return !secure && p.TLS != policy.Required && p.SASL != policy.NotSupported && p.ExternalOffer == policy.ExternalAlways
}

// saslChoice says whether a connecting end with settings p uses EXTERNAL
// from the offer f, and why not when it does not.
func saslChoice(p policy.Settings, secure bool, f features, hasCert bool) (use bool, whyNot string) {
	switch {
	case !secure && !f.has("EXTERNAL"):
		return false, "no TLS, so no SASL EXTERNAL"
	case !secure:
		// Never a SASL exchange on a plain stream, whatever is offered.
		return false, "SASL EXTERNAL was offered on a stream that is not TLS-protected"
	case !f.has("EXTERNAL"):
		return false, "the receiver offered no SASL EXTERNAL"
	case p.SASL == policy.NotSupported:
		return false, "the initiator has SASL NotSupported"
	case !hasCert:
		return false, "the initiator has no certificate"
	}
	return true, ""
}

// External is the SASL EXTERNAL mechanism (RFC 4422 appendix A) as XMPP
// servers use it (XEP-0178): the identity comes from the TLS client
// certificate and the only message is the optional authorization
// identity. The server's permissions callback decides.
var External = sasl.Mechanism{
	Name: "EXTERNAL",
	Start: func(n *sasl.Negotiator) (bool, []byte, any, error) {
		_, _, authzid := n.Credentials()
		return false, authzid, nil, nil
	},
	Next: func(n *sasl.Negotiator, challenge []byte, _ any) (bool, []byte, any, error) {
		if n.State()&sasl.Receiving == 0 || n.State()&sasl.StepMask != sasl.AuthTextSent {
			return false, nil, nil, sasl.ErrTooManySteps
		}
		if n.Permissions(sasl.Credentials(func() ([]byte, []byte, []byte) { return nil, nil, challenge })) {
			return false, nil, nil, nil
		}
		return false, nil, nil, sasl.ErrAuthn
	},
}

// externalPermitted is the receiving server's check of an EXTERNAL
// exchange: a TLS client certificate that validated for the stream's
// 'from' domain during the handshake (certErr is what that check found),
// and an authorization identity that is empty or that domain. It returns
// the reason for a refusal, or nil.
func externalPermitted(cs *tls.ConnectionState, certErr error, from, authzid string) error {
	switch {
	case cs == nil || !cs.HandshakeComplete:
		return errors.New("the stream is not TLS-protected")
	case len(cs.PeerCertificates) == 0:
		return errors.New("no client certificate was presented")
	case certErr != nil:
		return certErr
	case authzid != "" && authzid != from:
		return fmt.Errorf("authorization identity %q is not the stream's sender %s", authzid, from)
	}
	return nil
}

func saslFailureXML(cond outcome.Condition, text string) string {
	s := "<failure xmlns='" + nsSASL + "'><" + string(cond) + "/>"
	if text != "" {
		s += "<text>" + esc(text) + "</text>"
	}
	return s + "</failure>"
}

// serveSASL answers <auth/>. It reports true when the peer is
// authenticated, once the stream restarted; false, with no error, when
// the attempt was refused and the peer may try something else on the
// same stream.
func (rs *receiverState) serveSASL(el *element) (bool, error) {
	c := rs.c
	c.step = outcome.StepSASL
	if !c.secure {
		// Never a SASL exchange on a plain stream.
		return false, c.refuse(outcome.EncryptionRequired, fmt.Sprintf("the %s sent <auth/> on a stream that is not TLS-protected", c.them),
			saslFailureXML(outcome.EncryptionRequired, ""), closeTag)
	}
	mech := el.attr("mechanism")
	if !rs.offer.has(mech) {
		_ = c.refuse(outcome.InvalidMechanism, fmt.Sprintf("the %s asked for mechanism %q, which was not offered", c.them, mech),
			saslFailureXML(outcome.InvalidMechanism, ""))
		return false, nil
	}
	if err := rs.stopAt(outcome.StepSASL); err != nil {
		return false, err
	}
	resp, err := decodeSASL(el.Text)
	if err != nil {
		_ = c.refuse(outcome.IncorrectEncoding, "the initial response is not base64: "+err.Error(), saslFailureXML(outcome.IncorrectEncoding, ""))
		return false, nil
	}
	var refusal error
	server := sasl.NewServer(External, func(n *sasl.Negotiator) bool {
		_, _, authzid := n.Credentials()
		refusal = externalPermitted(n.TLSState(), rs.tls.certErr, c.peer, string(authzid))
		return refusal == nil
	}, sasl.TLSState(*c.tlsState()))
	if _, _, err := server.Step(resp); err != nil {
		msg := "SASL EXTERNAL refused"
		if refusal != nil {
			msg += ": " + refusal.Error()
		}
		_ = c.refuse(outcome.NotAuthorized, msg, saslFailureXML(outcome.NotAuthorized, msg))
		return false, nil
	}
	if err := c.send("<success xmlns='" + nsSASL + "'/>"); err != nil {
		return false, c.abort(err)
	}
	c.tr.succeed(outcome.Receiver, outcome.SASLOverTLS)
	// The stream restarts, with nothing left to negotiate (RFC 6120
	// §6.4.6).
	c.restart()
	return true, rs.acceptStream(false, true)
}

// decodeSASL decodes the text of <auth/>; "=" is the empty response.
func decodeSASL(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" || text == "=" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(text)
}

// doSASL runs SASL EXTERNAL as the initiating end. Once the receiver
// accepted, the stream restarts and it returns the method; a refusal is
// recorded and is not an error (0, nil), so that the caller can fall
// back to dialback.
func (hs *initiatorState) doSASL() (outcome.Method, error) {
	c := hs.c
	c.step = outcome.StepSASL
	var opts []sasl.Option
	if c.ep.fault(ForeignAuthzid) {
		opts = append(opts, sasl.Credentials(func() ([]byte, []byte, []byte) { return nil, nil, []byte("other." + c.ep.cfg.Domain) }))
	}
	_, resp, err := sasl.NewClient(External, opts...).Step(nil)
	if err != nil {
		return 0, c.abort(fmt.Errorf("sasl: %w", err))
	}
	payload := "="
	if len(resp) > 0 {
		payload = base64.StdEncoding.EncodeToString(resp)
	}
	if err := c.send("<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>" + payload + "</auth>"); err != nil {
		return 0, c.abort(err)
	}
	el, err := c.read()
	if err != nil {
		return 0, c.abort(err)
	}
	switch {
	case el.is(nsSASL, "success"):
		// After SASL the stream restarts once more, with nothing left
		// to negotiate (RFC 6120 §6.4.6).
		c.restart()
		return outcome.SASLOverTLS, hs.openStream(hs.from(), hs.to(), true)
	case el.is(nsSASL, "failure"):
		cond, text := el.condition("")
		if cond == "" {
			cond = outcome.NotAuthorized
		}
		_ = c.peerFailed(cond, "%s", orDefault(text, "the receiver refused SASL EXTERNAL"))
		return 0, nil
	}
	return 0, c.abort(badFormat(fmt.Sprintf("expected <success/> or <failure/>, got %s", el)))
}
