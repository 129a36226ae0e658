package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"xmppneg/policy/outcome"
	"xmppneg/sim/resolve"
)

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
	// PeerPurposes names the extended key usages of the receiver's
	// certificate ("serverAuth only", "none"...), and PeerClientAuth
	// says whether they allow it to authenticate a TLS client, as the
	// receiver's certificate must when that server initiates.
	PeerPurposes   string `json:"peer_purposes,omitempty"`
	PeerClientAuth bool   `json:"peer_client_auth,omitempty"`
}

// Offer is what a receiver offered on one stream, as the initiator read
// it.
type Offer struct {
	TLS      bool   `json:"tls"`      // the stream was TLS-protected
	Features string `json:"features"` // as a person reads them
	// Mechanisms are the SASL mechanisms listed (an empty <mechanisms/>
	// element lists none).
	Mechanisms []string `json:"mechanisms,omitempty"`
}

// Entry is one piece of XML that travelled on a connection.
type Entry struct {
	Elapsed int64  `json:"t_us"` // microseconds since the negotiation started
	Conn    string `json:"conn"` // "main" or "verify"
	From    string `json:"from"` // who sent it, "initiator a.test"
	To      string `json:"to"`   // who received it
	TLS     bool   `json:"tls"`  // whether it travelled inside TLS
	XML     string `json:"xml"`
	// Read marks what the receiving end recorded as it read it (bytes
	// as they came, Config.RecordReads), rather than the sender as it
	// sent it: what a server outside the harness said is only known so.
	Read bool `json:"read,omitempty"`
}

// Result is what one negotiation came to, with what was seen on the way.
type Result struct {
	Initiator string
	Receiver  string
	Outcome   outcome.Outcome
	// Recovered lists failures that a later step made good, such as a
	// SASL EXTERNAL refusal followed by successful dialback.
	Recovered []outcome.Failure
	// Authenticated is, in the initiator's view, the method it
	// authenticated with, whatever came next: a negotiation whose ping
	// then went unanswered failed (Outcome), but its authentication
	// happened and is kept here.
	Authenticated outcome.Method
	TLS           *TLSInfo
	// Offers lists the features the receiver offered on each stream of
	// the main connection, as the initiator read them.
	Offers     []Offer
	StreamIDs  []string
	Duration   time.Duration
	Transcript []Entry
	// Resolution is how DNS found the receiver (nil when it was
	// registered on the Network), and Attempts every target the main
	// connection tried, in order.
	Resolution *resolve.Result
	Attempts   []Attempt
	// Notes are what an end did that is neither XML nor a failure.
	Notes []string
	// Role is, for a connection a server outside the harness opened to
	// an endpoint (OnInbound), the part the endpoint played: "receiver"
	// of the server's own stream, or "authoritative" server answering
	// its verify connection.
	Role string
	// At is when the negotiation started.
	At time.Time
	// VerifyAnswered is set, for a verify connection a server outside
	// the harness opened to an endpoint (Role "authoritative"), when it
	// asked, had its answers (Notes say which) and ended: what a
	// verify connection is for. Its Outcome is then neither a method
	// nor a failure.
	VerifyAnswered bool
	// Scan is set for a connection that was the probe's TLS version
	// scan (ScanALPN), not a negotiation.
	Scan *ScanSeen
}

// ScanSeen is a TLS version scan as the scanned endpoint saw it.
type ScanSeen struct {
	Version  string `json:"version"`  // "TLS 1.1"
	From     string `json:"from"`     // the scanner's address
	Accepted bool   `json:"accepted"` // the handshake completed
}

// String is one line: "TLS 1.1 scan from 127.0.0.1:40000, refused".
func (s *ScanSeen) String() string {
	state := "refused"
	if s.Accepted {
		state = "accepted"
	}
	return fmt.Sprintf("%s scan from %s, %s", s.Version, s.From, state)
}

// Attempt is one target a connection tried and what happened there.
type Attempt struct {
	Target resolve.Target `json:"target"`
	Addr   string         `json:"addr"`
	Result string         `json:"result"` // "connected", "skipped: …", or the error
}

// MarshalJSON writes the result in the shape every report uses:
// "outcome" is a method id or "failed", "failure" says why.
func (r *Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Initiator  string            `json:"initiator"`
		Receiver   string            `json:"receiver"`
		Outcome    string            `json:"outcome"`
		Failure    *outcome.Failure  `json:"failure"`
		Text       string            `json:"text"`
		Recovered  []outcome.Failure `json:"recovered"`
		TLS        *TLSInfo          `json:"tls"`
		Offers     []Offer           `json:"offers"`
		StreamIDs  []string          `json:"stream_ids"`
		DurationMS float64           `json:"duration_ms"`
		Resolution *resolve.Result   `json:"resolution,omitempty"`
		Attempts   []Attempt         `json:"attempts,omitempty"`
		Notes      []string          `json:"notes,omitempty"`
		Role       string            `json:"role,omitempty"`
		Auth       string            `json:"authenticated,omitempty"`
		Transcript []Entry           `json:"transcript"`
	}{r.Initiator, r.Receiver, r.outcomeID(), r.Outcome.Failure, r.outcomeText(), nonNil(r.Recovered), r.TLS,
		nonNil(r.Offers), nonNil(r.StreamIDs), durationMS(r.Duration), r.Resolution, r.Attempts, r.Notes, r.Role, authID(r.Authenticated), nonNil(r.Transcript)})
}

// authID is the id of the method authenticated with, "" when none.
func authID(m outcome.Method) string {
	if m == 0 {
		return ""
	}
	return m.String()
}

// AuthenticatedThenFailed reports whether the initiator authenticated
// and what it did next failed (its ping unanswered, say).
func (r *Result) AuthenticatedThenFailed() bool {
	return r.Authenticated != 0 && !r.Outcome.OK()
}

// outcomeID is the outcome's id, or "verify-answered" for a verify
// connection that did its job.
func (r *Result) outcomeID() string {
	if r.VerifyAnswered {
		return "verify-answered"
	}
	return r.Outcome.ID()
}

func (r *Result) outcomeText() string {
	if r.VerifyAnswered {
		return "verify connection: " + r.verifyAnswers()
	}
	return r.Outcome.String()
}

// verifyAnswers says what a verify connection was answered, from the
// notes the authoritative end made.
func (r *Result) verifyAnswers() string {
	var answers []string
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "answered ") {
			answers = append(answers, n)
		}
	}
	if len(answers) == 0 {
		return "ended without asking anything"
	}
	return strings.Join(answers, "; ")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Explain is a one-line account of the result for a person.
func (r *Result) Explain() string {
	if r.VerifyAnswered {
		return fmt.Sprintf("%s: verify connection: %s (its dialback check, as designed)", r.Route(), r.verifyAnswers())
	}
	if r.AuthenticatedThenFailed() {
		return fmt.Sprintf("%s: authenticated with %s, then %s", r.Route(), r.Authenticated.Name(), r.Outcome.Explain())
	}
	s := fmt.Sprintf("%s: %s", r.Route(), r.Outcome.Explain())
	if r.Outcome.OK() {
		for _, f := range r.Recovered {
			s += fmt.Sprintf(" (after %s failed: %s)", f.Step, f.Message)
		}
	}
	return s
}

// TranscriptText renders the transcript, one element a line, with the
// time of each.
func (r *Result) TranscriptText() string { return transcriptText(r.Transcript, true) }

// Route is "initiator → receiver", with "?" for a side whose domain is
// not known (a peer whose stream header named no valid one).
func (r *Result) Route() string {
	name := func(d string) string {
		if d == "" {
			return "?"
		}
		return d
	}
	return name(r.Initiator) + " → " + name(r.Receiver)
}

func transcriptText(entries []Entry, times bool) string {
	var b strings.Builder
	for _, e := range entries {
		lock := "   "
		if e.TLS {
			lock = "TLS"
		}
		if times {
			fmt.Fprintf(&b, "%8.3fms ", float64(e.Elapsed)/1000)
		}
		// Lines of the XML (a server may send some) are indented like its
		// first, so that none can pass for a line of the transcript.
		fmt.Fprintf(&b, "%-6s %s %s → %s\n    %s\n", e.Conn, lock, e.From, e.To, strings.ReplaceAll(e.XML, "\n", "\n    "))
	}
	return b.String()
}
