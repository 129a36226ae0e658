// Package outcome is the vocabulary every part of xmppneg uses for what a
// negotiation came to: the authentication Method that succeeded, or a
// Failure with the Step where it happened, its Condition and the Side
// that raised it. The oracle predicts an Outcome, the engine observes
// one, scenario files declare one, real servers are compared with one,
// and every report renders one; no part compares them as text.
//
// An Outcome used as an expectation may leave the step, the condition or
// the side of its failure unset: Match treats an unset field as "any".
package outcome

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Method is an authentication method a negotiation can end with. The
// zero Method is none: the negotiation failed.
type Method uint8

// The methods the Lync Server 2013 document names, in its order.
const (
	SASLOverTLS Method = iota + 1 // STARTTLS, then SASL EXTERNAL (XEP-0178)
	TLSDialback                   // STARTTLS, then Server Dialback (XEP-0220)
	TCPDialback                   // Server Dialback on an unencrypted stream
)

// Methods lists every Method in the document's order, which is also the
// order of preference: SASL over TLS is the strongest.
var Methods = []Method{SASLOverTLS, TLSDialback, TCPDialback}

var methodInfo = [...]struct{ id, name string }{
	SASLOverTLS: {"sasl-over-tls", "SASL over TLS"},
	TLSDialback: {"tls-dialback", "TLS Dialback"},
	TCPDialback: {"tcp-dialback", "TCP Dialback"},
}

func (m Method) valid() bool { return m > 0 && int(m) < len(methodInfo) }

// String returns the method's id, such as "sasl-over-tls", or "none".
func (m Method) String() string {
	if !m.valid() {
		if m == 0 {
			return "none"
		}
		return fmt.Sprintf("Method(%d)", uint8(m))
	}
	return methodInfo[m].id
}

// Name returns the document's name for m, such as "SASL over TLS".
func (m Method) Name() string {
	if !m.valid() {
		return m.String()
	}
	return methodInfo[m].name
}

// MarshalText implements encoding.TextMarshaler with the method's id.
func (m Method) MarshalText() ([]byte, error) {
	if !m.valid() {
		return nil, fmt.Errorf("outcome: no method %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseMethod.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// AcceptedMethods is the help text listing what ParseMethod accepts.
var AcceptedMethods = strings.Join(ids(Methods), ", ")

// ParseMethod reads a method id or the document's name for it, in any
// case ("tls-dialback", "TLS Dialback").
func ParseMethod(s string) (Method, error) {
	n := fold(s)
	for _, m := range Methods {
		if n == fold(m.String()) || n == fold(m.Name()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("invalid method %q: accepted values are %s", s, AcceptedMethods)
}

// fold makes the spellings of one value compare equal: any case, with or
// without separators.
func fold(s string) string {
	return separators.Replace(strings.ToLower(strings.TrimSpace(s)))
}

var separators = strings.NewReplacer(" ", "", "-", "", "_", "")

func ids[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}

// MethodSet is a set of methods kept in document order.
type MethodSet []Method

// NewMethodSet returns the methods of ms without duplicates, in document
// order.
func NewMethodSet(ms ...Method) MethodSet {
	out := MethodSet{}
	for _, m := range Methods {
		for _, x := range ms {
			if x == m {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Has reports whether m is in s.
func (s MethodSet) Has(m Method) bool {
	for _, x := range s {
		if x == m {
			return true
		}
	}
	return false
}

// Equal reports whether s and t hold the same methods.
func (s MethodSet) Equal(t MethodSet) bool {
	a, b := NewMethodSet(s...), NewMethodSet(t...)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Minus returns the methods of s that are not in t.
func (s MethodSet) Minus(t MethodSet) MethodSet {
	var out []Method
	for _, m := range s {
		if !t.Has(m) {
			out = append(out, m)
		}
	}
	return NewMethodSet(out...)
}

// String lists the ids, comma separated, or "none".
func (s MethodSet) String() string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(ids(s), ", ")
}

// Names lists the document's names, comma separated, or "none".
func (s MethodSet) Names() string {
	if len(s) == 0 {
		return "none"
	}
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = m.Name()
	}
	return strings.Join(parts, ", ")
}

// MarshalJSON writes the set as a list of ids, [] when empty.
func (s MethodSet) MarshalJSON() ([]byte, error) {
	return json.Marshal(ids(s))
}

// Step is the part of a negotiation where something happened. The zero
// Step is unset; in an expectation it matches any step.
type Step uint8

// The steps of a negotiation, in protocol order.
const (
	StepTCP            Step = iota + 1 // resolving and connecting
	StepStream                         // stream headers and features
	StepStartTLS                       // <starttls/> and its answer
	StepTLSHandshake                   // the TLS handshake itself
	StepSASL                           // SASL EXTERNAL
	StepDialback                       // db:result between initiator and receiver
	StepDialbackVerify                 // the receiver's verify connection to the authoritative server
	StepTimeout                        // a deadline passed; Failure.During says in which step
)

// Steps lists every Step in protocol order.
var Steps = []Step{StepTCP, StepStream, StepStartTLS, StepTLSHandshake, StepSASL, StepDialback, StepDialbackVerify, StepTimeout}

var stepIDs = [...]string{
	StepTCP: "tcp", StepStream: "stream", StepStartTLS: "starttls", StepTLSHandshake: "tls-handshake",
	StepSASL: "sasl", StepDialback: "dialback", StepDialbackVerify: "dialback-verify", StepTimeout: "timeout",
}

// String returns the step's id, such as "tls-handshake", or "" when unset.
func (s Step) String() string {
	if int(s) < len(stepIDs) {
		return stepIDs[s]
	}
	return fmt.Sprintf("Step(%d)", uint8(s))
}

// AcceptedSteps is the help text listing what ParseStep accepts.
var AcceptedSteps = strings.Join(ids(Steps), ", ")

// ParseStep reads a step id.
func ParseStep(s string) (Step, error) { return parseID("step", s, Steps) }

// MarshalText implements encoding.TextMarshaler.
func (s Step) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; "" is unset.
func (s *Step) UnmarshalText(b []byte) error { return unmarshalID(s, b, ParseStep) }

// parseID returns the value of all whose id is s, in any case.
func parseID[T fmt.Stringer](what, s string, all []T) (T, error) {
	for _, x := range all {
		if fold(s) == fold(x.String()) {
			return x, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("invalid %s %q: accepted values are %s", what, s, strings.Join(ids(all), ", "))
}

// unmarshalID sets *v from its id; an empty id leaves it unset.
func unmarshalID[T any](v *T, b []byte, parse func(string) (T, error)) error {
	var zero T
	if len(b) == 0 {
		*v = zero
		return nil
	}
	x, err := parse(string(b))
	*v = x
	return err
}

// Side is a party of a negotiation. The zero Side is unset; in an
// expectation it matches any side.
type Side uint8

// The parties: the initiating server opens the stream; the receiving
// server accepts it and, for dialback, asks the authoritative server of
// the initiator's domain over a verify connection of its own.
const (
	Initiator Side = iota + 1
	Receiver
	Authoritative
)

// Sides lists every Side.
var Sides = []Side{Initiator, Receiver, Authoritative}

var sideIDs = [...]string{Initiator: "initiator", Receiver: "receiver", Authoritative: "authoritative"}

// String returns the side's id, such as "receiver", or "" when unset.
func (s Side) String() string {
	if int(s) < len(sideIDs) {
		return sideIDs[s]
	}
	return fmt.Sprintf("Side(%d)", uint8(s))
}

// AcceptedSides is the help text listing what ParseSide accepts.
var AcceptedSides = strings.Join(ids(Sides), ", ")

// ParseSide reads a side id.
func ParseSide(s string) (Side, error) { return parseID("side", s, Sides) }

// MarshalText implements encoding.TextMarshaler.
func (s Side) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; "" is unset.
func (s *Side) UnmarshalText(b []byte) error { return unmarshalID(s, b, ParseSide) }

// Failure says where and why a negotiation failed.
type Failure struct {
	Step      Step      `json:"step"`
	Condition Condition `json:"condition"`
	By        Side      `json:"by"`
	// Message is one line for a person.
	Message string `json:"message,omitempty"`
	// During is, for a timeout, the step that was waited on.
	During Step `json:"during,omitempty"`
	// Conn is the connection it happened on: "main", or "verify" for the
	// receiver's verify connection to the authoritative server.
	Conn string `json:"conn,omitempty"`
	// Elapsed is the time since the negotiation started, in microseconds.
	Elapsed int64 `json:"elapsed_us,omitempty"`
}

// String is the short form every report uses:
// "failed at starttls (unsupported-feature by initiator)". Fields left
// unset in an expectation are left out.
func (f Failure) String() string {
	if f.Condition == CancelledByCaller {
		// Not a failure of the negotiation: the run around it stopped.
		if f.During != 0 {
			return "cancelled during " + f.During.String()
		}
		return "cancelled"
	}
	s := "failed"
	if f.Step != 0 {
		s += " at " + f.Step.String()
		if f.During != 0 {
			s += " during " + f.During.String()
		}
	}
	var detail []string
	if f.Condition != "" {
		detail = append(detail, string(f.Condition))
	}
	if f.By != 0 {
		detail = append(detail, "by "+f.By.String())
	}
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, " ") + ")"
	}
	return s
}

// Explain is the sentence a person reads:
// "starttls failed (unsupported-feature, raised by initiator): why".
func (f Failure) Explain() string {
	if f.Condition == CancelledByCaller {
		return f.String() + ": " + f.Message
	}
	if f.Step == StepTimeout {
		return fmt.Sprintf("timeout during %s (raised by %s): %s", f.During, f.By, f.Message)
	}
	return fmt.Sprintf("%s failed (%s, raised by %s): %s", f.Step, f.Condition, f.By, f.Message)
}

// match reports whether f has every field that want sets.
func (f Failure) match(want Failure) bool {
	return (want.Step == 0 || want.Step == f.Step) &&
		(want.Condition == "" || want.Condition == f.Condition) &&
		(want.By == 0 || want.By == f.By) &&
		(want.During == 0 || want.During == f.During)
}

// Outcome is what a negotiation came to: a Method, or a Failure.
type Outcome struct {
	Method  Method
	Failure *Failure // set when Method is none; in an expectation, nil means any failure
}

// Succeeded returns the outcome of a negotiation that authenticated with m.
func Succeeded(m Method) Outcome { return Outcome{Method: m} }

// Failed returns the outcome of a negotiation that failed with f.
func Failed(f Failure) Outcome { return Outcome{Failure: &f} }

// AnyFailure is the expectation that a negotiation fails, however.
func AnyFailure() Outcome { return Outcome{} }

// OK reports whether the negotiation authenticated.
func (o Outcome) OK() bool { return o.Method != 0 }

// ID is the method's id, or "failed".
func (o Outcome) ID() string {
	if o.OK() {
		return o.Method.String()
	}
	return "failed"
}

// String is the method's id, or the failure's short form.
func (o Outcome) String() string {
	switch {
	case o.OK():
		return o.Method.String()
	case o.Failure != nil:
		return o.Failure.String()
	}
	return "failed"
}

// Explain is the sentence a person reads: "authenticated with TLS
// Dialback", or what failed and why.
func (o Outcome) Explain() string {
	switch {
	case o.OK():
		return "authenticated with " + o.Method.Name()
	case o.Failure != nil:
		return o.Failure.Explain()
	}
	return "failed"
}

// Match reports whether o meets the expectation want: the same method,
// or a failure with every field of want's failure that is set. An
// expectation of a failure without details matches every failure.
func (o Outcome) Match(want Outcome) bool {
	if want.OK() || o.OK() {
		return want.Method == o.Method
	}
	if want.Failure == nil {
		return true
	}
	return o.Failure != nil && o.Failure.match(*want.Failure)
}

// Same reports whether o and p are the same outcome in everything Match
// compares: the same method, or failures at the same step (and, for a
// timeout, during the same step) with the same condition raised by the
// same side.
func (o Outcome) Same(p Outcome) bool {
	if o.OK() || p.OK() {
		return o.Method == p.Method
	}
	if o.Failure == nil || p.Failure == nil {
		return o.Failure == p.Failure
	}
	a, b := *o.Failure, *p.Failure
	return a.Step == b.Step && a.Condition == b.Condition && a.By == b.By && a.During == b.During
}

// Strip returns o with only what Match compares: the method, or the
// failure's step, condition, side and during. Two outcomes that Match
// each other strip to equal values.
func (o Outcome) Strip() Outcome {
	if o.Failure == nil {
		return o
	}
	f := Failure{Step: o.Failure.Step, Condition: o.Failure.Condition, By: o.Failure.By, During: o.Failure.During}
	return Outcome{Method: o.Method, Failure: &f}
}

// outcomeJSON is the one JSON shape of an outcome: "outcome" is always a
// method id or "failed", "failure" says why, "text" is String().
type outcomeJSON struct {
	Outcome string   `json:"outcome"`
	Failure *Failure `json:"failure,omitempty"`
	Text    string   `json:"text"`
}

// MarshalJSON writes {"outcome": id|"failed", "failure": {...}, "text": ...}.
func (o Outcome) MarshalJSON() ([]byte, error) {
	return json.Marshal(outcomeJSON{Outcome: o.ID(), Failure: o.Failure, Text: o.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (o *Outcome) UnmarshalJSON(b []byte) error {
	var v outcomeJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = Outcome{Failure: v.Failure}
	if v.Outcome == "failed" {
		return nil
	}
	m, err := ParseMethod(v.Outcome)
	o.Method = m
	return err
}

// Condition is the reason of a failure: a stream error condition (RFC
// 6120 §4.9.3), a SASL failure condition (§6.5), a stanza error
// condition as dialback errors carry them (XEP-0220 §2.4), or one of the
// harness's own below. Conditions that real servers send arrive as they
// are, so the set is open; Conditions lists the known ones.
type Condition string

// Conditions the harness raises itself, besides the protocols' own.
const (
	BadCertificate    Condition = "bad-certificate"   // a TLS handshake aborted over a certificate
	HandshakeFailure  Condition = "handshake-failure" // a TLS handshake that failed otherwise
	ProtocolVersion   Condition = "protocol-version"  // no TLS version both ends speak (the TLS alert's name)
	ConnectionClosed  Condition = "connection-closed" // the peer hung up without an error
	StartTLSFailure   Condition = "failure"           // <failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
	DialbackInvalid   Condition = "invalid"           // db:result type='invalid'
	PingError         Condition = "ping-error"        // the authenticated stream refused the ping
	TriggerFailed     Condition = "trigger-failed"    // a real server could not be made to connect
	NoConnection      Condition = "no-connection"     // a real server never connected
	ClosedOnPurpose   Condition = "closed"            // a close-at fault
	SilentOnPurpose   Condition = "silent"            // a silent-at fault
	CancelledByCaller Condition = "cancelled"         // the run was interrupted
)

// Conditions that the harness raises and that the protocols define.
const (
	BadFormat              Condition = "bad-format"
	ConnectionTimeout      Condition = "connection-timeout"
	HostUnknown            Condition = "host-unknown"
	ImproperAddressing     Condition = "improper-addressing"
	InvalidFrom            Condition = "invalid-from"
	InvalidNamespace       Condition = "invalid-namespace"
	NotAuthorized          Condition = "not-authorized"
	NotWellFormed          Condition = "not-well-formed"
	PolicyViolation        Condition = "policy-violation"
	RemoteConnectionFailed Condition = "remote-connection-failed"
	ResourceConstraint     Condition = "resource-constraint"
	UndefinedCondition     Condition = "undefined-condition"
	UnsupportedFeature     Condition = "unsupported-feature"
	UnsupportedStanzaType  Condition = "unsupported-stanza-type"
	UnsupportedVersion     Condition = "unsupported-version"
	EncryptionRequired     Condition = "encryption-required"
	IncorrectEncoding      Condition = "incorrect-encoding"
	InvalidMechanism       Condition = "invalid-mechanism"
	ItemNotFound           Condition = "item-not-found"
	RemoteServerNotFound   Condition = "remote-server-not-found"
	RemoteServerTimeout    Condition = "remote-server-timeout"
)

// knownConditions are the conditions of RFC 6120 (stream errors §4.9.3,
// SASL failures §6.5, stanza errors §8.3.3 as XEP-0220 uses them) and
// the harness's own.
var knownConditions = []Condition{
	// stream errors
	BadFormat, "bad-namespace-prefix", "conflict", ConnectionTimeout, "host-gone", HostUnknown,
	ImproperAddressing, "internal-server-error", InvalidFrom, InvalidNamespace, "invalid-xml",
	NotAuthorized, NotWellFormed, PolicyViolation, RemoteConnectionFailed, "reset", ResourceConstraint,
	"restricted-xml", "see-other-host", "system-shutdown", UndefinedCondition, "unsupported-encoding",
	UnsupportedFeature, UnsupportedStanzaType, UnsupportedVersion,
	// SASL failures
	"aborted", "account-disabled", "credentials-expired", EncryptionRequired, IncorrectEncoding,
	"invalid-authzid", InvalidMechanism, "malformed-request", "mechanism-too-weak", "temporary-auth-failure",
	// stanza errors (dialback)
	"bad-request", "feature-not-implemented", "forbidden", "gone", ItemNotFound, "jid-malformed",
	"not-acceptable", "not-allowed", "recipient-unavailable", "redirect", "registration-required",
	RemoteServerNotFound, RemoteServerTimeout, "service-unavailable", "subscription-required", "unexpected-request",
	// the harness's own
	BadCertificate, HandshakeFailure, ProtocolVersion, ConnectionClosed, StartTLSFailure, DialbackInvalid, PingError,
	TriggerFailed, NoConnection, ClosedOnPurpose, SilentOnPurpose, CancelledByCaller,
}

// Conditions lists the known conditions, sorted.
func Conditions() []Condition {
	seen := map[Condition]bool{}
	var out []Condition
	for _, c := range knownConditions {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ParseCondition reads a known condition.
func ParseCondition(s string) (Condition, error) {
	for _, c := range knownConditions {
		if strings.TrimSpace(strings.ToLower(s)) == string(c) {
			return c, nil
		}
	}
	names := make([]string, 0, len(knownConditions))
	for _, c := range Conditions() {
		names = append(names, string(c))
	}
	return "", fmt.Errorf("invalid condition %q: accepted values are %s", s, strings.Join(names, ", "))
}
