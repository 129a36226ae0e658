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
)

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

// receiveSASL answers <auth/>. It reports true when the peer is
// authenticated; false, with no error, when the attempt was refused and
// the peer may try something else on the same stream.
func (s *side) receiveSASL(el *element, offered features) (bool, error) {
	s.step = StepSASL
	if !s.secure {
		// Never a SASL exchange on a plain stream.
		return false, s.refuse(StepSASL, "encryption-required", "the "+string(s.peerRole)+" sent <auth/> on a stream that is not TLS-protected",
			"<failure xmlns='"+nsSASL+"'><encryption-required/></failure>", "</stream:stream>")
	}
	mech := el.attr("mechanism")
	if !offered.has(mech) {
		_ = s.refuse(StepSASL, "invalid-mechanism", fmt.Sprintf("the %s asked for mechanism %q, which was not offered", s.peerRole, mech),
			"<failure xmlns='"+nsSASL+"'><invalid-mechanism/></failure>")
		return false, nil
	}
	if err := s.stopAt(StepSASL); err != nil {
		return false, err
	}
	resp, err := decodeSASL(el.Text)
	if err != nil {
		_ = s.refuse(StepSASL, "incorrect-encoding", "the initial response is not base64: "+err.Error(),
			"<failure xmlns='"+nsSASL+"'><incorrect-encoding/></failure>")
		return false, nil
	}
	cs := s.c.ConnectionState()
	var refusal error
	server := sasl.NewServer(External, func(n *sasl.Negotiator) bool {
		_, _, authzid := n.Credentials()
		refusal = externalPermitted(n.TLSState(), s.certErr, s.peer, string(authzid))
		return refusal == nil
	}, sasl.TLSState(cs))
	if _, _, err := server.Step(resp); err != nil {
		msg := "SASL EXTERNAL refused"
		if refusal != nil {
			msg += ": " + refusal.Error()
		}
		_ = s.refuse(StepSASL, "not-authorized", msg, "<failure xmlns='"+nsSASL+"'><not-authorized/><text>"+esc(msg)+"</text></failure>")
		return false, nil
	}
	if err := s.send("<success xmlns='" + nsSASL + "'/>"); err != nil {
		return false, err
	}
	s.tr.succeed(Receiver, policy.SASLOverTLS)
	return true, nil
}

// decodeSASL decodes the text of <auth/>; "=" is the empty response.
func decodeSASL(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" || text == "=" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(text)
}

// initiateSASL runs SASL EXTERNAL as the initiating side. It reports
// whether the receiver accepted; a refusal is recorded and is not an
// error, so that the caller can fall back to dialback.
func (s *side) initiateSASL(r xml.TokenReader) (bool, error) {
	s.step = StepSASL
	var opts []sasl.Option
	if s.fault(ForeignAuthzid) {
		opts = append(opts, sasl.Credentials(func() ([]byte, []byte, []byte) { return nil, nil, []byte("other." + s.ep.cfg.Domain) }))
	}
	client := sasl.NewClient(External, opts...)
	_, resp, err := client.Step(nil)
	if err != nil {
		return false, fmt.Errorf("sasl: %w", err)
	}
	payload := "="
	if len(resp) > 0 {
		payload = base64.StdEncoding.EncodeToString(resp)
	}
	if err := s.send("<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>" + payload + "</auth>"); err != nil {
		return false, err
	}
	el, err := s.read(r)
	if err != nil {
		return false, err
	}
	switch {
	case el.is(nsSASL, "success"):
		return true, nil
	case el.is(nsSASL, "failure"):
		cond, text := "not-authorized", ""
		for _, c := range el.Children {
			if c.Name.Local == "text" {
				text = strings.TrimSpace(c.Text)
			} else {
				cond = c.Name.Local
			}
		}
		s.peerFail(StepSASL, cond, orDefault(text, "the receiver refused SASL EXTERNAL"))
		return false, nil
	}
	return false, badFormat(fmt.Sprintf("expected <success/> or <failure/>, got %s", el))
}
