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
// xconn (wire.go), the wire: it reads and writes the XML streams
// (xml.go), records the transcript and turns every error into a typed
// failure (errors.go). TLS is apart from it, as crypto/tls keeps Config
// and ConnectionState apart from Conn: tlsEnd (tlsconfig.go) builds the
// configurations, judges the peer's certificate and keeps what the
// handshake found, one in each role's state.
//
// Each stream feature is one streamFeature value, in the manner of
// mellium's StreamFeature, in the file of its protocol: when it is
// offered, how it is listed, parsed and described, and for an
// authentication method how each end negotiates it (starttls.go,
// sasl.go, dialback.go; extensions.go for those only said). The roles
// iterate one table of them, streamFeatures (features.go).
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
