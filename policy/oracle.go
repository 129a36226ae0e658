package policy

import (
	"fmt"

	"xmppneg/certs"
)

// Prediction is what the oracle expects of one negotiation.
type Prediction struct {
	// Outcome is the method expected to authenticate the stream, or
	// "failed".
	Outcome string `json:"outcome"`
	// For a failure: the step, condition and side of the root cause, in
	// the vocabulary of the negotiation results.
	Step      string `json:"step,omitempty"`
	Condition string `json:"condition,omitempty"`
	By        string `json:"by,omitempty"`
	// Reasons explains the prediction, one short sentence a decision.
	Reasons []string `json:"reasons"`
}

// Method returns the predicted method and true, or "" and false.
func (p Prediction) Method() (Method, bool) {
	if p.Outcome == "failed" {
		return "", false
	}
	return Method(p.Outcome), true
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

// Predict says what a negotiation from an initiating endpoint with
// settings in to a receiving endpoint with settings re should come to,
// from the rules of RFC 6120, XEP-0178 and XEP-0220 as this harness
// applies them, without negotiating anything. The receiving side
// offers, the initiating side chooses; TLS Required with SASL Required
// disables dialback; a strict endpoint aborts TLS on an invalid
// certificate; dialback is confirmed by the initiator's own endpoint as
// authoritative server, over a connection the receiver opens.
func Predict(in, re Settings) Prediction {
	var p Prediction
	say := func(format string, a ...any) { p.Reasons = append(p.Reasons, fmt.Sprintf(format, a...)) }
	fail := func(step, cond, by, format string, a ...any) Prediction {
		say(format, a...)
		p.Outcome, p.Step, p.Condition, p.By = "failed", step, cond, by
		return p
	}

	// Before TLS: the receiver offers STARTTLS when it may and can.
	offerTLS := re.TLS != NotSupported && hasCert(re.Cert)
	secure := false
	switch {
	case offerTLS && in.TLS != NotSupported:
		say("receiver offers STARTTLS and initiator uses it")
		if in.Strict && badServerCert(re.Cert) {
			return fail("tls-handshake", "bad-certificate", "initiator", "strict initiator rejects the receiver's %s certificate", re.Cert)
		}
		if re.Strict && hasCert(in.Cert) && badClientCert(in.Cert) {
			return fail("tls-handshake", "bad-certificate", "receiver", "strict receiver rejects the initiator's %s certificate", in.Cert)
		}
		secure = true
	case offerTLS && re.TLS == Required:
		return fail("starttls", "unsupported-feature", "initiator", "receiver requires TLS but initiator does not support it")
	case in.TLS == Required:
		if re.TLS != NotSupported {
			return fail("starttls", "policy-violation", "initiator", "initiator requires TLS but the receiver, having no certificate, does not offer STARTTLS")
		}
		return fail("starttls", "policy-violation", "initiator", "initiator requires TLS but the receiver does not support it")
	case re.TLS == NotSupported || in.TLS == NotSupported:
		say("no TLS: %s", map[bool]string{true: "receiver has TLS NotSupported", false: "initiator has TLS NotSupported"}[re.TLS == NotSupported])
	default:
		say("no TLS: the receiver has no certificate, so it offers no STARTTLS")
	}

	// Authentication: EXTERNAL first, dialback as fallback.
	offerSASL := secure && re.SASL != NotSupported && hasCert(in.Cert)
	offerDB := re.DialbackUsable() && (secure || re.TLS != Required)
	if offerSASL && in.SASL != NotSupported {
		if !badClientCert(in.Cert) {
			say("SASL EXTERNAL with the initiator's valid certificate")
			p.Outcome = string(SASLOverTLS)
			return p
		}
		say("receiver refuses SASL EXTERNAL: the initiator's certificate is %s", in.Cert)
		if !offerDB || !in.DialbackUsable() {
			return fail("sasl", "not-authorized", "receiver", "SASL EXTERNAL refused and no dialback to fall back to")
		}
	}
	if !offerDB || !in.DialbackUsable() {
		step := "dialback"
		if offerSASL {
			step = "sasl"
		}
		why := noMethodReason(in, re, secure, offerSASL, offerDB)
		return fail(step, "policy-violation", "initiator", "no common authentication method: %s", why)
	}

	// Dialback: the receiver verifies the key with the initiator's domain.
	if f, ok := predictVerify(in, re); !ok {
		p.Reasons = append(p.Reasons, f.Reasons...)
		p.Outcome, p.Step, p.Condition, p.By = "failed", f.Step, f.Condition, f.By
		return p
	}
	if secure {
		say("Server Dialback on the TLS stream")
		p.Outcome = string(TLSDialback)
	} else {
		say("Server Dialback on the plain stream")
		p.Outcome = string(TCPDialback)
	}
	return p
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

// predictVerify follows the verify connection that the receiver opens to
// the initiator's endpoint, now in the role of authoritative server.
func predictVerify(auth, verifier Settings) (Prediction, bool) {
	var p Prediction
	fail := func(cond, by, format string, a ...any) (Prediction, bool) {
		p.Reasons = append(p.Reasons, fmt.Sprintf(format, a...))
		p.Step, p.Condition, p.By = "dialback-verify", cond, by
		return p, false
	}
	offerTLS := auth.TLS != NotSupported && hasCert(auth.Cert)
	switch {
	case offerTLS && verifier.TLS != NotSupported:
		if verifier.Strict && badServerCert(auth.Cert) {
			return fail("bad-certificate", "receiver", "on the verify connection the strict receiver rejects the authoritative server's %s certificate", auth.Cert)
		}
		if auth.Strict && hasCert(verifier.Cert) && badClientCert(verifier.Cert) {
			return fail("bad-certificate", "authoritative", "on the verify connection the strict authoritative server rejects the receiver's %s certificate", verifier.Cert)
		}
	case offerTLS && auth.TLS == Required:
		return fail("unsupported-feature", "receiver", "the authoritative server requires TLS on the verify connection but the receiver does not support it")
	case verifier.TLS == Required:
		return fail("policy-violation", "receiver", "the receiver requires TLS on the verify connection but the authoritative server does not offer it")
	case auth.TLS == Required:
		return fail("policy-violation", "authoritative", "the authoritative server requires TLS before db:verify but has no certificate to offer it")
	}
	return p, true
}
