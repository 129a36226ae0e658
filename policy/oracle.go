package policy

import (
	"fmt"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
)

// Prediction is what the oracle expects of one negotiation.
type Prediction struct {
	// Outcome is the method expected to authenticate the stream, or the
	// failure expected, with the step, condition and side of its root
	// cause.
	Outcome outcome.Outcome `json:"outcome"`
	// Reasons explains the prediction, one short sentence a decision.
	Reasons []string `json:"reasons"`
}

// badServerCert reports whether a certificate in state st fails a peer's
// check of a server certificate (serverAuth usage); badClientCert the
// same for a client certificate (clientAuth usage).
func badServerCert(st certs.State) bool {
	switch st {
	case certs.Expired, certs.SelfSigned, certs.Untrusted, certs.WrongName:
		return true
	}
	return false
}

func badClientCert(st certs.State) bool { return badServerCert(st) || st == certs.NoClientAuth }

func hasCert(st certs.State) bool { return st != certs.Missing && st != "" }

// predictor accumulates the reasons of a prediction.
type predictor struct{ p Prediction }

func (pr *predictor) say(format string, a ...any) {
	pr.p.Reasons = append(pr.p.Reasons, fmt.Sprintf(format, a...))
}

func (pr *predictor) succeed(m outcome.Method, format string, a ...any) Prediction {
	pr.say(format, a...)
	pr.p.Outcome = outcome.Succeeded(m)
	return pr.p
}

func (pr *predictor) fail(step outcome.Step, cond outcome.Condition, by outcome.Side, format string, a ...any) Prediction {
	pr.say(format, a...)
	pr.p.Outcome = outcome.Failed(outcome.Failure{Step: step, Condition: cond, By: by, Message: pr.p.Reasons[len(pr.p.Reasons)-1]})
	return pr.p
}

// Predict says what a negotiation from an initiating endpoint with
// settings in to a receiving endpoint with settings re should come to,
// from the rules of RFC 6120, XEP-0178 and XEP-0220 as this harness
// applies them, without negotiating anything. The receiving side
// offers, the initiating side chooses; TLS Required with SASL Required
// disables dialback; a strict endpoint aborts TLS on an invalid
// certificate; dialback is confirmed by the initiator's own endpoint as
// authoritative server, over a connection the receiver opens.
func Predict(in, re Settings) Prediction {
	var pr predictor
	const (
		initiator = outcome.Initiator
		receiver  = outcome.Receiver
	)

	// Before TLS: the receiver offers STARTTLS when it may and can.
	offerTLS := re.TLS != NotSupported && hasCert(re.Cert)
	secure := false
	switch {
	case offerTLS && in.TLS != NotSupported:
		pr.say("receiver offers STARTTLS and initiator uses it")
		if in.Strict && badServerCert(re.Cert) {
			return pr.fail(outcome.StepTLSHandshake, outcome.BadCertificate, initiator, "strict initiator rejects the receiver's %s certificate", re.Cert)
		}
		if re.Strict && hasCert(in.Cert) && badClientCert(in.Cert) {
			return pr.fail(outcome.StepTLSHandshake, outcome.BadCertificate, receiver, "strict receiver rejects the initiator's %s certificate", in.Cert)
		}
		secure = true
	case offerTLS && re.TLS == Required:
		return pr.fail(outcome.StepStartTLS, outcome.UnsupportedFeature, initiator, "receiver requires TLS but initiator does not support it")
	case in.TLS == Required && re.TLS != NotSupported:
		return pr.fail(outcome.StepStartTLS, outcome.PolicyViolation, initiator, "initiator requires TLS but the receiver, having no certificate, does not offer STARTTLS")
	case in.TLS == Required:
		return pr.fail(outcome.StepStartTLS, outcome.PolicyViolation, initiator, "initiator requires TLS but the receiver does not support it")
	case re.TLS == NotSupported:
		pr.say("no TLS: receiver has TLS NotSupported")
	case in.TLS == NotSupported:
		pr.say("no TLS: initiator has TLS NotSupported")
	default:
		pr.say("no TLS: the receiver has no certificate, so it offers no STARTTLS")
	}

	// Authentication: EXTERNAL first, dialback as fallback.
	offerSASL := secure && re.SASL != NotSupported && hasCert(in.Cert)
	offerDB := re.DialbackUsable() && (secure || re.TLS != Required)
	if offerSASL && in.SASL != NotSupported {
		if !badClientCert(in.Cert) {
			return pr.succeed(outcome.SASLOverTLS, "SASL EXTERNAL with the initiator's valid certificate")
		}
		pr.say("receiver refuses SASL EXTERNAL: the initiator's certificate is %s", in.Cert)
		if !offerDB || !in.DialbackUsable() {
			return pr.fail(outcome.StepSASL, outcome.NotAuthorized, receiver, "SASL EXTERNAL refused and no dialback to fall back to")
		}
	}
	if !offerDB || !in.DialbackUsable() {
		step := outcome.StepDialback
		if offerSASL {
			step = outcome.StepSASL
		}
		return pr.fail(step, outcome.PolicyViolation, initiator, "no common authentication method: %s", noMethodReason(in, re, secure, offerSASL, offerDB))
	}

	// Dialback: the receiver verifies the key with the initiator's domain.
	if p, ok := predictVerify(&pr, in, re); !ok {
		return p
	}
	if secure {
		return pr.succeed(outcome.TLSDialback, "Server Dialback on the TLS stream")
	}
	return pr.succeed(outcome.TCPDialback, "Server Dialback on the plain stream")
}

func noMethodReason(in, re Settings, secure, offerSASL, offerDB bool) string {
	var sasl, db string
	switch {
	case !offerSASL && !secure:
		sasl = "no SASL without TLS"
	case !offerSASL && re.SASL == NotSupported:
		sasl = "the receiver has SASL NotSupported"
	case !offerSASL:
		sasl = "the initiator has no certificate"
	case in.SASL == NotSupported:
		sasl = "the initiator has SASL NotSupported"
	default:
		sasl = "SASL EXTERNAL was refused"
	}
	switch {
	case !offerDB && !re.Dialback:
		db = "the receiver has dialback off"
	case !offerDB && !re.DialbackUsable():
		db = "the receiver's TLS and SASL Required disable dialback"
	case !offerDB:
		db = "the receiver allows dialback only after TLS"
	case !in.Dialback:
		db = "the initiator has dialback off"
	default:
		db = "the initiator's TLS and SASL Required disable dialback"
	}
	return sasl + "; " + db
}

// predictVerify follows the verify connection that the receiver (the
// verifier) opens to the initiator's endpoint, now in the role of
// authoritative server. It returns the failed prediction and false when
// the verification cannot succeed.
func predictVerify(pr *predictor, auth, verifier Settings) (Prediction, bool) {
	const step = outcome.StepDialbackVerify
	offerTLS := auth.TLS != NotSupported && hasCert(auth.Cert)
	switch {
	case offerTLS && verifier.TLS != NotSupported:
		if verifier.Strict && badServerCert(auth.Cert) {
			return pr.fail(step, outcome.BadCertificate, outcome.Receiver, "on the verify connection the strict receiver rejects the authoritative server's %s certificate", auth.Cert), false
		}
		if auth.Strict && hasCert(verifier.Cert) && badClientCert(verifier.Cert) {
			return pr.fail(step, outcome.BadCertificate, outcome.Authoritative, "on the verify connection the strict authoritative server rejects the receiver's %s certificate", verifier.Cert), false
		}
	case offerTLS && auth.TLS == Required:
		return pr.fail(step, outcome.UnsupportedFeature, outcome.Receiver, "the authoritative server requires TLS on the verify connection but the receiver does not support it"), false
	case verifier.TLS == Required:
		return pr.fail(step, outcome.PolicyViolation, outcome.Receiver, "the receiver requires TLS on the verify connection but the authoritative server does not offer it"), false
	case auth.TLS == Required:
		return pr.fail(step, outcome.PolicyViolation, outcome.Authoritative, "the authoritative server requires TLS before db:verify but has no certificate to offer it"), false
	}
	return Prediction{}, true
}
