// Package sim runs XMPP server-to-server negotiations for real: endpoints
// with their own policy, certificate and dialback secret listen on
// loopback, open streams to each other and negotiate STARTTLS (RFC 6120
// §5), SASL EXTERNAL (XEP-0178) and Server Dialback (XEP-0220, with a real
// verify connection to the authoritative server), recording which method
// succeeded, or the step, condition and side of a failure, with the XML
// transcript of every connection involved.
//
// Each step of a negotiation lives in its own file: stream.go (headers,
// features, errors), starttls.go, sasl.go, dialback.go and verify.go. An
// endpoint decides only from its own settings and what its peer sends.
package sim
