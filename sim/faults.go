package sim

import (
	"fmt"
	"sort"
	"strings"

	"xmppneg/policy/outcome"
)

// Fault is a deliberate protocol misbehaviour an endpoint can be given,
// to reproduce a broken or hostile peer. Each applies where the endpoint
// plays the role it names.
//
// Faults are not behaviour knobs (policy.Behaviour): they break rules the
// harness never bends of its own accord, and the oracle does not predict
// them, so they stay out of policy.Settings, where no spec, profile or
// configuration file can reach them. The zero Faults is none.
type Fault string

// The faults. Receiving side:
const (
	OmitRequired      Fault = "omit-required"         // no <required/> although TLS is Required
	StartTLSFailure   Fault = "starttls-failure"      // offer STARTTLS, then answer <failure/>
	ReuseStreamID     Fault = "reuse-stream-id"       // the same stream id after TLS
	OfferSASLPlain    Fault = "offer-sasl-before-tls" // offer SASL EXTERNAL on the plain stream
	VerifyAlwaysValid Fault = "verify-always-valid"   // as authoritative server, answer valid to every key
)

// Initiating side:
const (
	AuthBeforeTLS     Fault = "auth-before-tls"     // send <auth/> on the plain stream
	StanzaBeforeAuth  Fault = "stanza-before-auth"  // send a message before authenticating
	DialbackBeforeTLS Fault = "dialback-before-tls" // send db:result on the plain stream
	WrongKey          Fault = "wrong-key"           // send a wrong dialback key
	NoRestart         Fault = "no-restart"          // go on after TLS without a new stream header
	ChangeFrom        Fault = "change-from"         // another 'from' on the restarted stream
	OmitFrom          Fault = "omit-from"           // no 'from' on the stream header
	OmitTo            Fault = "omit-to"             // no 'to' on the stream header
	ForeignAuthzid    Fault = "foreign-authzid"     // SASL EXTERNAL for another domain
	MalformedXML      Fault = "malformed-xml"       // send XML that is not well-formed
	Oversize          Fault = "oversize"            // send an element larger than the limit
	// Floods: what a hostile peer sends to exhaust memory, each twice
	// the receiver's budget for it.
	WhitespaceFlood Fault = "whitespace-flood" // whitespace between elements, without end
	TextFlood       Fault = "text-flood"       // text outside any element
	HeaderFlood     Fault = "header-flood"     // a stream header with an endless attribute
	NotXML          Fault = "not-xml"          // an HTTP request instead of a stream header
)

// Receiving side, on the verify connection it opens:
const (
	VerifyWrongID Fault = "verify-wrong-id" // db:verify with another stream id
	VerifySwapped Fault = "verify-swapped"  // db:verify with 'from' and 'to' swapped
)

var allFaults = []Fault{OmitRequired, StartTLSFailure, ReuseStreamID, OfferSASLPlain, VerifyAlwaysValid,
	AuthBeforeTLS, StanzaBeforeAuth, DialbackBeforeTLS, WrongKey, NoRestart, ChangeFrom, OmitFrom, OmitTo,
	ForeignAuthzid, MalformedXML, Oversize, WhitespaceFlood, TextFlood, HeaderFlood, NotXML, VerifyWrongID, VerifySwapped}

// AllFaults lists every named fault.
func AllFaults() []Fault { return append([]Fault{}, allFaults...) }

// silentSteps and closeSteps are where SilentAt and CloseAt may stand.
var silentSteps = []outcome.Step{outcome.StepStream, outcome.StepStartTLS, outcome.StepSASL, outcome.StepDialback, outcome.StepDialbackVerify}

// FaultSteps lists the steps where SilentAt and CloseAt may stand.
func FaultSteps() []outcome.Step { return append([]outcome.Step{}, silentSteps...) }

// Faults are the misbehaviours of one endpoint.
type Faults struct {
	// SilentAt makes the endpoint stop answering when its negotiation
	// reaches this step: StepStream (no stream header), StepStartTLS (no
	// <proceed/>), StepSASL (no SASL outcome), StepDialback (no dialback
	// outcome) or StepDialbackVerify (as authoritative server, no answer to
	// db:verify).
	SilentAt outcome.Step
	// CloseAt makes it close the TCP connection, without a word, at the
	// same points.
	CloseAt outcome.Step
	set     map[Fault]bool
}

// Has reports whether f is among the faults.
func (fs Faults) Has(f Fault) bool { return fs.set[f] }

// With returns fs with f added.
func (fs Faults) With(f ...Fault) Faults {
	set := map[Fault]bool{}
	for k := range fs.set {
		set[k] = true
	}
	for _, x := range f {
		set[x] = true
	}
	fs.set = set
	return fs
}

// String lists the faults as ParseFaults reads them, in a fixed order.
func (fs Faults) String() string {
	var parts []string
	for f := range fs.set {
		parts = append(parts, string(f))
	}
	sort.Strings(parts)
	if fs.SilentAt != 0 {
		parts = append(parts, "silent-at="+fs.SilentAt.String())
	}
	if fs.CloseAt != 0 {
		parts = append(parts, "close-at="+fs.CloseAt.String())
	}
	return strings.Join(parts, ",")
}

// FaultNames is the help text listing what ParseFaults accepts.
func FaultNames() string {
	var names []string
	for _, f := range allFaults {
		names = append(names, string(f))
	}
	var steps []string
	for _, s := range silentSteps {
		steps = append(steps, s.String())
	}
	return strings.Join(names, ", ") + ", silent-at=STEP, close-at=STEP (STEP: " + strings.Join(steps, ", ") + ")"
}

// ParseFaults reads a comma-separated list of faults.
func ParseFaults(spec string) (Faults, error) {
	var fs Faults
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(strings.ToLower(part))
		if part == "" {
			continue
		}
		if k, v, ok := strings.Cut(part, "="); ok {
			st, err := ParseFaultStep(v)
			if err != nil {
				return fs, fmt.Errorf("%s: %w", k, err)
			}
			switch k {
			case "silent-at":
				fs.SilentAt = st
			case "close-at":
				fs.CloseAt = st
			default:
				return fs, fmt.Errorf("unknown fault %q: accepted faults are %s", k, FaultNames())
			}
			continue
		}
		ok := false
		for _, f := range allFaults {
			if string(f) == part {
				fs, ok = fs.With(f), true
			}
		}
		if !ok {
			return fs, fmt.Errorf("unknown fault %q: accepted faults are %s", part, FaultNames())
		}
	}
	return fs, nil
}

// ParseFaultStep reads a step where SilentAt or CloseAt may stand.
func ParseFaultStep(v string) (outcome.Step, error) {
	var names []string
	for _, s := range silentSteps {
		if s.String() == v {
			return s, nil
		}
		names = append(names, s.String())
	}
	return 0, fmt.Errorf("invalid step %q: accepted values are %s", v, strings.Join(names, ", "))
}
