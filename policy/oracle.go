package policy

import (
	"crypto/x509"
	"fmt"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
)

// The oracle restates the engine's rules on purpose: sim decides from one
// end's settings and what its peer sends, the oracle from both ends'
// settings at once, so that a disagreement between the two is a finding
// rather than a shared bug. Each rule below says, in a "Restates" comment,
// which function of sim (package xmppneg/sim) is its counterpart; change
// both, or neither, and let the suites compare them. The names are of
// functions, not lines: sim's stream features move.

// Prediction is what the oracle expects of one negotiation.
type Prediction struct {
	// Outcome is the method expected to authenticate the stream, or the
	// failure expected, with the step, condition and side of its root
	// cause.
	Outcome outcome.Outcome `json:"outcome"`
	// Reasons explains the prediction, one short sentence a decision.
	Reasons []string `json:"reasons"`
}

func hasCert(st certs.State) bool { return st != certs.Missing && st != "" }

// offersTLS says whether a receiving end offers STARTTLS: when its TLS is
// not NotSupported and it has a certificate, or, without one, when its
// behaviour offers it anyway (and then fails the handshake).
// Restates sim's startTLSOffer.
func offersTLS(re Settings) bool {
	return re.TLS != NotSupported && (hasCert(re.Cert) || re.NoCertTLS != NoCertTLSWithhold)
}

// usage is the extended key usage a purpose checks for.
func (p Purpose) usage() x509.ExtKeyUsage {
	switch p {
	case PurposeClient:
		return x509.ExtKeyUsageClientAuth
	case PurposeAny:
		return x509.ExtKeyUsageAny
	}
	return x509.ExtKeyUsageServerAuth
}

// goodServer reports whether a server certificate in state st passes the
// initiating end's check; goodClient whether a client certificate passes
// the check of a receiving end with behaviour b. Restates the judgement
// that sim makes of a real certificate (tlsEnd.judge, with clientUsage for
// the EKU knob) from the state alone, through certs.State.Passes.
func goodServer(st certs.State) bool              { return st.Passes(x509.ExtKeyUsageServerAuth) }
func goodClient(st certs.State, b Behaviour) bool { return st.Passes(b.EKU.usage()) }

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

func (pr *predictor) fail(f outcome.Failure, format string, a ...any) Prediction {
	pr.say(format, a...)
	f.Message = pr.p.Reasons[len(pr.p.Reasons)-1]
	pr.p.Outcome = outcome.Failed(f)
	return pr.p
}

func failure(step outcome.Step, cond outcome.Condition, by outcome.Side) outcome.Failure {
	return outcome.Failure{Step: step, Condition: cond, By: by}
}

func timeoutDuring(step outcome.Step, by outcome.Side) outcome.Failure {
	return outcome.Failure{Step: outcome.StepTimeout, During: step, Condition: outcome.ConnectionTimeout, By: by}
}

// Predict says what a negotiation from an initiating endpoint with
// settings in to a receiving endpoint with settings re should come to,
// from the rules of RFC 6120, XEP-0178 and XEP-0220 as the two ends'
// behaviours apply them, without negotiating anything. The receiving end
// offers, the initiating end chooses; TLS Required with SASL Required
// disables dialback; dialback is confirmed by the initiator's own endpoint
// as authoritative server, over a connection the receiver opens.
//
// After authentication the initiator proves the stream with a ping; a
// receiver that answers over a stream of its own (as real servers do)
// needs the reverse negotiation to succeed for the answer to arrive.
//
// Restates, for the ping, sim's initiatorState.pingAndClose and
// receiverState.serveAuthenticated (AnswerPings), and for XEP-0288
// BidiAgreed below.
func Predict(in, re Settings) Prediction {
	p := predictAuthentication(in, re)
	if !p.Outcome.OK() || re.AnswerPings != AnswerPingsOwnStream {
		return p
	}
	if BidiAgreed(in, re, p.Outcome.Method != outcome.TCPDialback) {
		pr := predictor{p: p}
		pr.say("the stream is bidirectional (XEP-0288): the receiver answers the ping over it")
		return pr.p
	}
	back := predictAuthentication(re, in)
	if back.Outcome.OK() {
		return p
	}
	pr := predictor{p: p}
	pr.say("the receiver answers the ping over a stream of its own, which fails: %s", back.Outcome)
	return pr.fail(timeoutDuring(outcome.StepStream, outcome.Initiator), "no answer to the ping: the receiver's own stream to the initiator fails (%s)", back.Outcome)
}

// BidiAgreed says whether a stream from in to re, encrypted or not,
// becomes bidirectional (XEP-0288): re offers <bidi/> in a namespace in
// asks for. XEP-0288's feature is offered and asked for only where the
// stream is encrypted or that end does not require it (Prosody 13);
// ejabberd 24.12 offers and looks for it in urn:xmpp:bidi, on every
// stream, so that it agrees only with its like. Restates sim's
// bidiOffer (the receiver) and bidiRequest (the initiator) together.
func BidiAgreed(in, re Settings, secure bool) bool {
	switch {
	case in.Bidi == BidiXEP && re.Bidi == BidiXEP:
		return (secure || in.TLS != Required) && (secure || re.TLS != Required)
	case in.Bidi == BidiWrongNamespace && re.Bidi == BidiWrongNamespace:
		return true
	}
	return false
}

// predictAuthentication is Predict up to the authenticated stream.
func predictAuthentication(in, re Settings) Prediction {
	var pr predictor
	const (
		initiator = outcome.Initiator
		receiver  = outcome.Receiver
	)
	if in.LegacyStreams {
		// A pre-1.0 stream (RFC 6120 §4.7.5): no features, no TLS; the
		// initiator sends its db:result at once. Restates sim's
		// initiatorState.authenticateLegacy.
		pr.say("initiator opens a pre-1.0 stream: no features, no TLS, dialback at once")
		if !in.DialbackUsable() {
			return predictNoMethod(&pr, in, false, false)
		}
		return predictDialback(&pr, in, re, false, false)
	}

	// Before TLS: the receiver offers STARTTLS when it may and can.
	// Restates sim's startTLSOffer (the offer) and startTLSChoice (the
	// initiator's answer to it, and what it does when TLS is required
	// and cannot be had); direct TLS restates Endpoint.dial.
	offerTLS := offersTLS(re)
	marked := offerTLS && re.TLS == Required && re.RequiredMarker == RequiredMarkerSend
	secure := false
	switch {
	case usesDirectTLS(in, re):
		pr.say("initiator connects to the receiver's direct TLS port (XEP-0368)")
		if p, failed := predictTLS(&pr, in, re, outcome.StepTLSHandshake, outcome.StepStream, initiator, receiver, true); failed {
			return p
		}
		secure = true
	case offerTLS && in.TLS != NotSupported:
		pr.say("receiver offers STARTTLS and initiator uses it")
		if p, failed := predictTLS(&pr, in, re, outcome.StepTLSHandshake, outcome.StepStream, initiator, receiver, false); failed {
			return p
		}
		secure = true
	case marked:
		return predictMissingTLS(&pr, in, re, outcome.UnsupportedFeature, "receiver requires TLS but initiator does not support it")
	case in.TLS == Required:
		why := "initiator requires TLS but the receiver does not support it"
		if re.TLS != NotSupported {
			why = "initiator requires TLS but the receiver, having no certificate, does not offer STARTTLS"
		}
		return predictMissingTLS(&pr, in, re, outcome.PolicyViolation, why)
	case re.TLS == NotSupported:
		pr.say("no TLS: receiver has TLS NotSupported")
	case in.TLS == NotSupported:
		pr.say("no TLS: initiator has TLS NotSupported")
	default:
		pr.say("no TLS: the receiver has no certificate, so it offers no STARTTLS")
	}

	// Authentication: EXTERNAL first, dialback as fallback. Restates
	// sim's saslOffer and dialbackOffer (receiverState.features), the
	// receiver closing with nothing to offer (receiverState.acceptStream,
	// NoFeatures), and the initiator's order of preference
	// (initiatorState.authenticate, with saslChoice, dialbackChoice and
	// receiverState.serveSASL's refusal).
	offerSASL := secure && re.SASL != NotSupported
	switch re.ExternalOffer {
	case ExternalIfCertShown:
		offerSASL = offerSASL && hasCert(in.Cert)
	case ExternalIfCertValid:
		offerSASL = offerSASL && hasCert(in.Cert) && goodClient(in.Cert, re.Behaviour)
	}
	offerDB, _ := dialbackOffered(re, secure)
	if secure && !offerSASL && !offerDB && re.NoFeatures == NoFeaturesClose {
		return pr.fail(failure(outcome.StepStream, outcome.UndefinedCondition, receiver), "the receiver has no stream features to offer after TLS and closes")
	}
	if offerSASL && in.SASL != NotSupported && hasCert(in.Cert) {
		if goodClient(in.Cert, re.Behaviour) {
			return pr.succeed(outcome.SASLOverTLS, "SASL EXTERNAL with the initiator's certificate")
		}
		refused := failure(outcome.StepSASL, outcome.NotAuthorized, receiver)
		if !in.DialbackUsable() || !(offerDB || in.UnofferedDialback == UnofferedDialbackSend) {
			return pr.fail(refused, "receiver refuses SASL EXTERNAL (the initiator's certificate is %s) and there is no dialback to fall back to", in.Cert)
		}
		pr.say("receiver refuses SASL EXTERNAL: the initiator's certificate is %s", in.Cert)
		refused.Message = pr.p.Reasons[len(pr.p.Reasons)-1]
		p := predictDialback(&pr, in, re, secure, offerDB)
		if !p.Outcome.OK() {
			// Dialback did not make good the refusal, which stays the
			// root cause: the first failure either end recorded.
			p.Outcome = outcome.Failed(refused)
		}
		return p
	}
	if in.DialbackUsable() && (offerDB || in.UnofferedDialback == UnofferedDialbackSend) {
		return predictDialback(&pr, in, re, secure, offerDB)
	}
	return predictNoMethod(&pr, in, offerSASL, secure, noMethodReason(in, re, secure, offerSASL, offerDB))
}

// usesDirectTLS reports whether a client connects to a server with
// direct TLS (XEP-0368): both do it and the server can listen for it.
// Restates sim's Endpoint.Start (the direct TLS listener) and
// Endpoint.dial (the client's choice of port).
func usesDirectTLS(client, server Settings) bool {
	return client.DirectTLS && server.DirectTLS && client.TLS != NotSupported && server.TLS != NotSupported && hasCert(server.Cert)
}

// nameOnly reports whether a certificate state is bad only by its name.
func nameOnly(st certs.State) bool { return st == certs.WrongName || st == certs.SRVNameOnly }

// dialbackOffered is whether re offers dialback on a stream, and why not.
// A receiver that drops plain db:result (jabberd2 with require_tls) or
// verifies it and closes (Prosody) advertises dialback before TLS all the
// same. Restates sim's dialbackOffer, with the same reasons.
func dialbackOffered(re Settings, secure bool) (bool, string) {
	switch {
	case !re.Dialback:
		return false, "the receiver has dialback off"
	case !re.DialbackUsable():
		return false, "the receiver's TLS and SASL Required disable dialback"
	case !secure && re.TLS == Required && !re.PlainDialback.Advertised():
		return false, "the receiver allows dialback only after TLS"
	}
	return true, ""
}

// dropsPlainDialback reports whether re drops a db:result on a plain
// stream without a word. Restates sim's receiverState.serveDialback
// (PlainDialback).
func dropsPlainDialback(re Settings, secure bool) bool {
	return !secure && re.TLS == Required && re.DialbackUsable() && re.PlainDialback == PlainDialbackDrop
}

// predictTLS follows the TLS handshake of a connection between a client
// (the initiator, or the receiver on its verify connection) and a server,
// and the certificate checks each end makes: during the handshake, then
// right after it. It returns the failed prediction and true when one end
// refuses the other's certificate.
//
// Restates sim's TLS steps: the versions each end allows and offers
// (tlsEnd.serverConfig, tlsEnd.clientConfig, tlsEnd.versions, VersionMismatch),
// a STARTTLS offered without a certificate (receiverState.serveStartTLS,
// NoCertTLS), the refusals during the handshake (tlsEnd.judge from the
// tls.Config's VerifyConnection, Refuse and RefuseServer), and those right
// after it (receiverState.acceptStream for Refuse, and
// connecting.refuseServerAfterTLS for RefuseServer).
func predictTLS(pr *predictor, client, server Settings, handshake, after outcome.Step, clientSide, serverSide outcome.Side, direct bool) (Prediction, bool) {
	badServer := !goodServer(server.Cert)
	badClient := hasCert(client.Cert) && !goodClient(client.Cert, server.Behaviour)
	clo, chi := client.TLSRange()
	slo, shi := server.TLSRange()
	offered := clo // the lowest version the client's hello offers
	if client.VersionMismatch.OffersFromTLS10() {
		offered = 10
	}
	switch {
	case chi < slo || shi < offered:
		// Versions are agreed before any certificate is sent: the server
		// finds none in common and says so with protocol_version, or
		// closes without a word.
		switch server.VersionMismatch {
		case VersionMismatchClose:
			return pr.fail(failure(handshake, outcome.ConnectionClosed, serverSide), "the %s speaks %s, the %s %s: no TLS version in common, and the %s closes the connection without an alert",
				clientSide, client.TLSRangeText(), serverSide, server.TLSRangeText(), serverSide), true
		case VersionMismatchInternalError:
			return pr.fail(failure(handshake, outcome.HandshakeFailure, serverSide), "the %s speaks %s, the %s %s: no TLS version in common, and the %s aborts with the internal_error alert",
				clientSide, client.TLSRangeText(), serverSide, server.TLSRangeText(), serverSide), true
		}
		return pr.fail(failure(handshake, outcome.ProtocolVersion, serverSide), "the %s speaks %s, the %s %s: no TLS version in common",
			clientSide, client.TLSRangeText(), serverSide, server.TLSRangeText()), true
	case shi < clo && client.VersionMismatch == VersionMismatchInternalError:
		return pr.fail(failure(handshake, outcome.HandshakeFailure, clientSide), "the %s offers TLS from 1.0 but completes only %s; the %s chose TLS %d.%d, and the %s aborts with the internal_error alert",
			clientSide, client.TLSRangeText(), serverSide, shi/10, shi%10, clientSide), true
	case shi < clo:
		// The client offered down to TLS 1.0, the server chose a version
		// below what the client completes.
		return pr.fail(failure(handshake, outcome.ConnectionClosed, clientSide), "the %s offers TLS from 1.0 but completes only %s; the %s chose TLS %d.%d, and the %s closes the connection without an alert",
			clientSide, client.TLSRangeText(), serverSide, shi/10, shi%10, clientSide), true
	case !hasCert(server.Cert) && server.NoCertTLS == NoCertTLSOfferAndRefuse:
		// It offered STARTTLS without a certificate and refuses it.
		step := handshake
		if step == outcome.StepTLSHandshake {
			step = outcome.StepStartTLS
		}
		return pr.fail(failure(step, outcome.StartTLSFailure, serverSide), "the %s has no certificate: it offered STARTTLS and answers <starttls/> with <failure/>", serverSide), true
	case !hasCert(server.Cert):
		// It offered TLS without a certificate (no_cert_tls=offer-and-fail):
		// no cipher suite can be chosen.
		return pr.fail(failure(handshake, outcome.HandshakeFailure, serverSide), "the %s has no certificate: it offered TLS and fails the handshake (no shared cipher)", serverSide), true
	case badServer && client.RefuseServer == ServerRefusalHandshake:
		return pr.fail(failure(handshake, outcome.BadCertificate, clientSide), "the %s aborts TLS over the %s's %s certificate", clientSide, serverSide, server.Cert), true
	case badClient && server.Refuse == RefuseAtHandshake && direct && nameOnly(client.Cert):
		// On direct TLS the server learns who connects from the stream
		// header: the name is checked, and refused, then.
		return pr.fail(failure(after, outcome.NotAuthorized, serverSide), "the %s refuses the %s's %s certificate once the stream header names the %s (direct TLS)", serverSide, clientSide, client.Cert, clientSide), true
	case badClient && server.Refuse == RefuseAtHandshake:
		return pr.fail(failure(handshake, outcome.BadCertificate, serverSide), "the %s aborts TLS over the %s's %s certificate", serverSide, clientSide, client.Cert), true
	case server.Refuse == RefuseAfterTLS && (badClient || !hasCert(client.Cert)):
		// The client opens its stream first; the server answers it with
		// the refusal.
		return pr.fail(failure(after, outcome.NotAuthorized, serverSide), "the %s closes the stream after TLS: the %s's certificate (%s) is not valid", serverSide, clientSide, client.Cert), true
	case badServer && client.RefuseServer == ServerRefusalAfterTLS:
		return pr.fail(failure(after, outcome.NotAuthorized, clientSide), "the %s closes the stream after TLS: the %s's %s certificate is not valid", clientSide, serverSide, server.Cert), true
	case badServer && client.RefuseServer == ServerRefusalClose:
		return pr.fail(failure(after, outcome.ConnectionClosed, clientSide), "the %s hangs up after TLS over the %s's %s certificate", clientSide, serverSide, server.Cert), true
	}
	return Prediction{}, false
}

// predictMissingTLS is the initiator's answer to TLS that is required (by
// the condition's side) and cannot be had. Restates sim's startTLSChoice
// (MissingTLS) and, for a <starttls/> that was not offered,
// receiverState.serveStartTLS (UnofferedStartTLS).
func predictMissingTLS(pr *predictor, in, re Settings, cond outcome.Condition, why string) Prediction {
	switch {
	case in.MissingTLS == MissingTLSGiveUpAtStream:
		return pr.fail(failure(outcome.StepStream, cond, outcome.Initiator), "%s: the initiator closes the stream", why)
	case cond == outcome.PolicyViolation && in.MissingTLS == MissingTLSTry && re.UnofferedStartTLS == UnofferedStartTLSIgnore:
		return pr.fail(timeoutDuring(outcome.StepStartTLS, outcome.Initiator), "%s: the initiator sends <starttls/> anyway and the receiver never answers it", why)
	case cond == outcome.PolicyViolation && in.MissingTLS == MissingTLSTry:
		return pr.fail(failure(outcome.StepStartTLS, outcome.StartTLSFailure, outcome.Receiver), "%s: the initiator sends <starttls/> anyway and the receiver refuses it", why)
	case cond == outcome.PolicyViolation && in.MissingTLS == MissingTLSWait:
		return pr.fail(timeoutDuring(outcome.StepStream, outcome.Receiver), "%s: the initiator waits in silence until the receiver gives up", why)
	}
	return pr.fail(failure(outcome.StepStartTLS, cond, outcome.Initiator), "%s", why)
}

// predictNoMethod is how the initiator gives up when no method is left.
// Restates sim's initiatorState.noMethod (NoMethod) and the step
// initiatorState.authenticate gives up at.
func predictNoMethod(pr *predictor, in Settings, offerSASL, secure bool, why ...string) Prediction {
	reason := "no common authentication method"
	if len(why) > 0 {
		reason += ": " + why[0]
	}
	switch in.NoMethod {
	case NoMethodUnsupportedFeature:
		return pr.fail(failure(outcome.StepStream, outcome.UnsupportedFeature, outcome.Initiator), "%s", reason)
	case NoMethodClose:
		return pr.fail(failure(outcome.StepStream, outcome.ConnectionClosed, outcome.Initiator), "%s; the initiator hangs up", reason)
	}
	step := outcome.StepDialback
	if offerSASL {
		step = outcome.StepSASL
	}
	return pr.fail(failure(step, outcome.PolicyViolation, outcome.Initiator), "%s", reason)
}

// noMethodReason is the reason the initiator gives. Restates the reasons
// of sim's saslChoice and dialbackChoice, which initiatorState.authenticate
// joins the same way.
func noMethodReason(in, re Settings, secure, offerSASL, offerDB bool) string {
	var sasl, db string
	switch {
	case !offerSASL && !secure:
		sasl = "no SASL without TLS"
	case !offerSASL && re.SASL == NotSupported:
		sasl = "the receiver has SASL NotSupported"
	case !offerSASL:
		sasl = "the receiver offers no SASL EXTERNAL for the initiator's certificate"
	case in.SASL == NotSupported:
		sasl = "the initiator has SASL NotSupported"
	case !hasCert(in.Cert):
		sasl = "the initiator has no certificate"
	default:
		sasl = "SASL EXTERNAL was refused"
	}
	_, db = dialbackOffered(re, secure)
	switch {
	case db != "":
	case !in.Dialback:
		db = "the initiator has dialback off"
	default:
		db = "the initiator's TLS and SASL Required disable dialback"
	}
	return sasl + "; " + db
}

// predictDialback follows the initiator's db:result: the receiver's
// answer, its verify connection to the initiator's endpoint as
// authoritative server, and how it answers when it cannot verify.
// Restates sim's receiverState.serveDialback (dialback not offered,
// DialbackOff, PlainDialback) and receiverState.unverifiable
// (Unverifiable).
func predictDialback(pr *predictor, in, re Settings, secure, offered bool) Prediction {
	if dropsPlainDialback(re, secure) {
		return pr.fail(timeoutDuring(outcome.StepDialback, outcome.Initiator), "the receiver requires TLS and drops db:result on a plain stream without a word")
	}
	if !offered {
		if ok, why := dialbackOffered(re, secure); !ok {
			if c := re.DialbackOff.StreamError(); c != "" && !re.Dialback {
				return pr.fail(failure(outcome.StepDialback, outcome.Condition(c), outcome.Receiver), "the initiator sends db:result although dialback is not offered; the receiver, which has dialback off, closes the stream with <%s/>", c)
			}
			return pr.fail(failure(outcome.StepDialback, outcome.PolicyViolation, outcome.Receiver), "the initiator sends db:result although dialback is not offered; the receiver refuses: %s", why)
		}
	}
	if f, ok := predictVerify(pr, in, re); !ok {
		switch re.Unverifiable {
		case UnverifiableHang:
			return pr.fail(timeoutDuring(outcome.StepDialback, outcome.Initiator), "the receiver cannot verify the key and never answers the db:result")
		case UnverifiableServerNotFound:
			return pr.fail(failure(outcome.StepDialbackVerify, outcome.RemoteServerNotFound, outcome.Receiver), "the receiver cannot verify the key and answers <remote-server-not-found/>")
		}
		pr.p.Outcome = outcome.Failed(f)
		return pr.p
	}
	if secure {
		return pr.succeed(outcome.TLSDialback, "Server Dialback on the TLS stream")
	}
	if re.TLS == Required && re.PlainDialback == PlainDialbackVerifyThenClose {
		return pr.fail(failure(outcome.StepDialback, outcome.PolicyViolation, outcome.Receiver), "the receiver verifies the key on the plain stream, then closes it: it requires TLS")
	}
	return pr.succeed(outcome.TCPDialback, "Server Dialback on the plain stream")
}

// predictVerify follows the verify connection that the receiver (the
// verifier) opens to the initiator's endpoint, now in the role of
// authoritative server. It returns the failure and false when the
// verification cannot succeed. Restates sim's verifierState.handshake (the
// verify connection's stream and TLS, through the same rules as the
// initiator's: startTLSOffer, startTLSChoice and predictTLS's) and
// authoritativeState.answer (TLS required before db:verify).
func predictVerify(pr *predictor, auth, verifier Settings) (outcome.Failure, bool) {
	const (
		step          = outcome.StepDialbackVerify
		receiver      = outcome.Receiver
		authoritative = outcome.Authoritative
	)
	fail := func(f outcome.Failure, format string, a ...any) (outcome.Failure, bool) {
		pr.say(format, a...)
		f.Message = pr.p.Reasons[len(pr.p.Reasons)-1]
		return f, false
	}
	if verifier.LegacyStreams {
		if auth.TLS == Required {
			return fail(failure(step, outcome.PolicyViolation, authoritative), "the receiver's verify connection is a pre-1.0 stream without TLS, which the authoritative server requires before db:verify")
		}
		return outcome.Failure{}, true
	}
	offerTLS := offersTLS(auth)
	marked := offerTLS && auth.TLS == Required && auth.RequiredMarker == RequiredMarkerSend
	switch {
	case offerTLS && verifier.TLS != NotSupported:
		if p, failed := predictTLS(pr, verifier, auth, step, step, receiver, authoritative, usesDirectTLS(verifier, auth)); failed {
			pr.p.Reasons = pr.p.Reasons[:len(pr.p.Reasons)-1]
			return fail(*p.Outcome.Failure, "on the verify connection: %s", p.Outcome.Failure.Message)
		}
		return outcome.Failure{}, true
	case marked:
		return fail(failure(step, outcome.UnsupportedFeature, receiver), "the authoritative server requires TLS on the verify connection but the receiver does not support it")
	case verifier.TLS == Required:
		switch verifier.MissingTLS {
		case MissingTLSTry:
			if auth.UnofferedStartTLS == UnofferedStartTLSIgnore {
				return fail(timeoutDuring(step, receiver), "the receiver sends <starttls/> on the verify connection although it is not offered; the authoritative server never answers it")
			}
			return fail(failure(step, outcome.StartTLSFailure, authoritative), "the receiver sends <starttls/> on the verify connection although it is not offered; the authoritative server refuses it")
		case MissingTLSWait:
			return fail(timeoutDuring(step, receiver), "the receiver waits in silence on the verify connection, which the authoritative server offers no TLS on")
		}
		return fail(failure(step, outcome.PolicyViolation, receiver), "the receiver requires TLS on the verify connection but the authoritative server does not offer it")
	case auth.TLS == Required:
		return fail(failure(step, outcome.PolicyViolation, authoritative), "the authoritative server requires TLS before db:verify but has no certificate to offer it")
	}
	return outcome.Failure{}, true
}
