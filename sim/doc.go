// Package sim runs XMPP server-to-server negotiations for real: endpoints
// with their own policy, certificate and dialback secret listen on
// loopback, open streams to each other and negotiate STARTTLS (RFC 6120
// §5), SASL EXTERNAL (XEP-0178) and Server Dialback (XEP-0220, with a real
// verify connection to the authoritative server), recording which method
// succeeded, or the step, condition and side of a failure, with the XML
// transcript of every connection involved.
//
// As crypto/tls has one handshake state per role, each role of a
// negotiation is a type of its own that reads top to bottom as a
// sequence of named steps: initiatorState (initiator.go) opens the
// stream, secures it and authenticates; receiverState (receiver.go)
// accepts it, offers what its policy allows and authenticates the
// initiator; verifierState and authoritativeState (verify.go) are the two
// ends of the dialback verify connection. They share one connection type,
// xconn (wire.go), which reads and writes the XML streams, records the
// transcript and turns every error into a typed failure (errors.go).
// Each feature's rules (when it is offered, how it is chosen, why it is
// refused) and both ends of its exchange live once, in its own file:
// starttls.go, sasl.go, dialback.go.
//
// An endpoint decides only from its own settings and what its peer
// sends. Results use the vocabulary of package outcome.
//
// Besides its settings' behaviour knobs (policy.Behaviour), which the
// oracle predicts too, an endpoint may be given Faults, rules broken on
// purpose that no setting may express, and a case a Downgrade, a
// man-in-the-middle on the path rather than anything an endpoint decides
// (docs/architecture.md, "Four kinds of knob").
package sim
