package sim

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"xmppneg/policy"
)

// Step names the part of a negotiation where something happened.
type Step string

// The steps of a negotiation, in protocol order.
const (
	StepTCP            Step = "tcp"
	StepStream         Step = "stream"
	StepStartTLS       Step = "starttls"
	StepTLSHandshake   Step = "tls-handshake"
	StepSASL           Step = "sasl"
	StepDialback       Step = "dialback"
	StepDialbackVerify Step = "dialback-verify"
	StepTimeout        Step = "timeout"
)

// Side names the party that raised a failure.
type Side string

// The parties of a negotiation.
const (
	Initiator     Side = "initiator"
	Receiver      Side = "receiver"
	Authoritative Side = "authoritative"
)

// Failure says where and why a negotiation failed.
type Failure struct {
	Step      Step   `json:"step"`
	Condition string `json:"condition"`        // stream error, SASL or dialback condition
	By        Side   `json:"by"`               // the side that raised it
	Message   string `json:"message"`          // one line for a person
	During    Step   `json:"during,omitempty"` // for timeouts: the step that was waited on
	Elapsed   int64  `json:"elapsed_us"`       // since the negotiation started
	Conn      string `json:"conn,omitempty"`   // main or verify
}

func (f Failure) String() string {
	s := fmt.Sprintf("%s failed (%s, raised by %s): %s", f.Step, f.Condition, f.By, f.Message)
	if f.During != "" {
		s = fmt.Sprintf("timeout during %s (raised by %s): %s", f.During, f.By, f.Message)
	}
	return s
}

// TLSInfo describes the TLS layer of the main connection.
type TLSInfo struct {
	Version     string `json:"version"`
	CipherSuite string `json:"cipher"`
	// PeerCertificate is what the initiator found of the receiver's
	// certificate: "valid" or the reason it is not.
	PeerCertificate string `json:"peer_certificate,omitempty"`
	// PeerSubject and PeerIssuer name the certificate the peer presented.
	PeerSubject string `json:"peer_subject,omitempty"`
	PeerIssuer  string `json:"peer_issuer,omitempty"`
}

func tlsInfo(cs tls.ConnectionState) *TLSInfo {
	return &TLSInfo{Version: tls.VersionName(cs.Version), CipherSuite: tls.CipherSuiteName(cs.CipherSuite)}
}

// Offer is what a receiver offered on one stream.
type Offer struct {
	TLS      bool   `json:"tls"`
	Features string `json:"features"`
}

// Entry is one piece of XML that travelled on a connection.
type Entry struct {
	Elapsed int64  `json:"t_us"` // microseconds since the negotiation started
	Conn    string `json:"conn"` // "main" or "verify"
	From    string `json:"from"` // who sent it, "initiator a.test"
	To      string `json:"to"`   // who received it
	TLS     bool   `json:"tls"`  // whether it travelled inside TLS
	XML     string `json:"xml"`
}

// Result is what one negotiation came to.
type Result struct {
	Initiator string `json:"initiator"`
	Receiver  string `json:"receiver"`
	// Outcome is the method that authenticated the stream, or "failed".
	Outcome string `json:"outcome"`
	// Failure is set when Outcome is "failed".
	Failure *Failure `json:"failure"`
	// Recovered lists failures that a later step made good, such as a
	// SASL EXTERNAL refusal followed by successful dialback.
	Recovered []Failure `json:"recovered,omitempty"`
	TLS       *TLSInfo  `json:"tls"`
	// Offers lists the features the receiver offered on each stream of
	// the main connection, as the initiator read them.
	Offers     []Offer  `json:"offers,omitempty"`
	StreamIDs  []string `json:"stream_ids"`
	DurationMS float64  `json:"duration_ms"`
	Transcript []Entry  `json:"transcript"`
}

// Outcome value of a failed negotiation.
const Failed = "failed"

// Method returns the method that succeeded and true, or "" and false.
func (r *Result) Method() (policy.Method, bool) {
	if r.Outcome == Failed || r.Outcome == "" {
		return "", false
	}
	return policy.Method(r.Outcome), true
}

// Explain is a one-line account of the result for a person.
func (r *Result) Explain() string {
	if m, ok := r.Method(); ok {
		s := fmt.Sprintf("%s → %s: authenticated with %s", r.Initiator, r.Receiver, m.Name())
		for _, f := range r.Recovered {
			s += fmt.Sprintf(" (after %s failed: %s)", f.Step, f.Message)
		}
		return s
	}
	if r.Failure == nil {
		return fmt.Sprintf("%s → %s: failed", r.Initiator, r.Receiver)
	}
	return fmt.Sprintf("%s → %s: %s", r.Initiator, r.Receiver, r.Failure)
}

// TranscriptText renders the transcript, one element a line.
func (r *Result) TranscriptText() string {
	var b strings.Builder
	for _, e := range r.Transcript {
		lock := "   "
		if e.TLS {
			lock = "TLS"
		}
		fmt.Fprintf(&b, "%8.3fms %-6s %s %s → %s\n    %s\n", float64(e.Elapsed)/1000, e.Conn, lock, e.From, e.To, e.XML)
	}
	return b.String()
}

func since(start time.Time) int64 { return time.Since(start).Microseconds() }
