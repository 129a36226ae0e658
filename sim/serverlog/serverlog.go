// Package serverlog reads what a real server (Prosody, ejabberd,
// jabberd2) logged about its s2s streams: which stream authenticated,
// how, and which failed and why. A federation run classifies the
// streams between two real servers from these lines when it has no
// recording of the wire (federate --no-relay), and cross-checks its
// recording with them otherwise.
//
// Only the lines these servers write at the levels the launchers of
// package realserver configure are known; a line no pattern matches is
// ignored, never guessed at. The patterns were taken from the logs of
// Prosody 0.12.3, ejabberd 23.01 and jabberd2 2.7.0 on loopback.
package serverlog

import (
	"regexp"
	"strings"

	"xmppneg/policy/outcome"
)

// Event is one line of a server's log about one s2s stream.
type Event struct {
	// From and To are the stream's initiating and receiving domains.
	From, To string
	// Inbound is set when the server logging it is the receiver.
	Inbound bool
	// Method is the method the stream authenticated with; none for a
	// failure.
	Method outcome.Method
	// Failed marks a failure; Final a failure after which the server
	// gives the stream up (an intermediate one, such as EXTERNAL refused
	// before dialback is tried, is not final).
	Failed, Final bool
	// Condition is the stream error condition the line names, if any.
	Condition outcome.Condition
	// Line is the log line, trimmed.
	Line string
}

// Parse returns the events of a log of a server of kind ("prosody",
// "ejabberd", "jabberd2", or a later generation of one of them, such as
// "prosody-13") serving domain. Unknown kinds have no events.
func Parse(kind, domain, log string) []Event {
	switch family(kind) {
	case "prosody":
		return parseProsody(domain, log)
	case "ejabberd":
		return parseEjabberd(domain, log)
	case "jabberd2":
		return parseJabberd2(domain, log)
	}
	return nil
}

// family is the server a kind is a generation of: "prosody-13" is
// Prosody.
func family(kind string) string {
	for _, f := range []string{"prosody", "ejabberd", "jabberd2"} {
		if kind == f || strings.HasPrefix(kind, f+"-") {
			return f
		}
	}
	return ""
}

// Known reports whether Parse knows the log of kind.
func Known(kind string) bool { return family(kind) != "" }

var (
	// Prosody: "s2sin55e5… info\tIncoming s2s connection b.test->a.test complete"
	prosodyLine     = regexp.MustCompile(`^(\S+)\s+(debug|info|warn|error)\t(.*)$`)
	prosodyComplete = regexp.MustCompile(`^(Incoming|Outgoing) s2s connection (\S+)->(\S+) complete`)
	prosodyClosed   = regexp.MustCompile(`^(Incoming|Outgoing) s2s stream (\S+)->(\S+) closed: (.*)$`)
	prosodySASLIn   = regexp.MustCompile(`^Accepting SASL EXTERNAL identity from (\S+)`)
	prosodySASLOut  = regexp.MustCompile(`^SASL EXTERNAL with (\S+) succeeded`)
	prosodyTLS      = regexp.MustCompile(`^Stream encrypted`)
	prosodyError    = regexp.MustCompile(`^([a-z]+(-[a-z]+)+)\b`)
)

func parseProsody(domain, log string) []Event {
	var out []Event
	encrypted := map[string]bool{} // session id → TLS
	saslIn := map[string]bool{}    // peers accepted with EXTERNAL
	saslOut := map[string]bool{}
	for _, l := range lines(log) {
		m := prosodyLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		src, msg := m[1], m[3]
		switch {
		case prosodyTLS.MatchString(msg):
			encrypted[src] = true
		case prosodySASLIn.MatchString(msg) && src == domain+":saslauth":
			saslIn[prosodySASLIn.FindStringSubmatch(msg)[1]] = true
		case prosodySASLOut.MatchString(msg) && src == domain+":saslauth":
			saslOut[prosodySASLOut.FindStringSubmatch(msg)[1]] = true
		case prosodyComplete.MatchString(msg):
			c := prosodyComplete.FindStringSubmatch(msg)
			e := Event{From: c[2], To: c[3], Inbound: c[1] == "Incoming", Line: strings.TrimSpace(l)}
			sasl := saslOut[e.To]
			if e.Inbound {
				sasl = saslIn[e.From]
			}
			switch {
			case sasl:
				e.Method = outcome.SASLOverTLS
			case encrypted[src]:
				e.Method = outcome.TLSDialback
			default:
				e.Method = outcome.TCPDialback
			}
			out = append(out, e)
		case prosodyClosed.MatchString(msg):
			c := prosodyClosed.FindStringSubmatch(msg)
			e := Event{From: c[2], To: c[3], Inbound: c[1] == "Incoming", Failed: true, Final: true, Line: strings.TrimSpace(l)}
			if cm := prosodyError.FindStringSubmatch(c[4]); cm != nil {
				e.Condition = outcome.Condition(cm[1])
			}
			out = append(out, e)
		}
	}
	return out
}

var (
	// ejabberd: "(tls|<0.457.0>) Accepted inbound s2s dialback authentication a.test -> b.test (127.0.0.1)"
	ejabberdAccepted = regexp.MustCompile(`\((tls|tcp)\|[^)]*\) Accepted (inbound|outbound) s2s (EXTERNAL|dialback) authentication (\S+) -> (\S+)`)
	ejabberdFailedAu = regexp.MustCompile(`\((?:tls|tcp)\|[^)]*\) Failed (inbound|outbound) s2s (\S+) authentication (\S+) -> (\S+) \([^)]*\): (.*)$`)
	ejabberdClosing  = regexp.MustCompile(`Closing inbound s2s connection (\S+) -> (\S+): (.*)$`)
	ejabberdFailedIn = regexp.MustCompile(`Failed to secure inbound s2s connection: (.*)$`)
	ejabberdFailOut  = regexp.MustCompile(`Failed to establish outbound s2s connection (\S+) -> (\S+): (.*)$`)
	ejabberdCond     = regexp.MustCompile(`\(([a-z]+(?:-[a-z]+)+)\)`)
)

func parseEjabberd(domain string, log string) []Event {
	var out []Event
	for _, l := range lines(log) {
		t := strings.TrimSpace(l)
		switch {
		case ejabberdAccepted.MatchString(l):
			m := ejabberdAccepted.FindStringSubmatch(l)
			e := Event{From: m[4], To: m[5], Inbound: m[2] == "inbound", Line: t}
			switch {
			case m[3] == "EXTERNAL":
				e.Method = outcome.SASLOverTLS
			case m[1] == "tls":
				e.Method = outcome.TLSDialback
			default:
				e.Method = outcome.TCPDialback
			}
			out = append(out, e)
		case ejabberdFailedAu.MatchString(l):
			m := ejabberdFailedAu.FindStringSubmatch(l)
			// It tries dialback after EXTERNAL: not final.
			out = append(out, Event{From: m[3], To: m[4], Inbound: m[1] == "inbound", Failed: true, Final: m[2] != "EXTERNAL", Line: t})
		case ejabberdClosing.MatchString(l):
			m := ejabberdClosing.FindStringSubmatch(l)
			e := Event{From: m[1], To: m[2], Inbound: true, Failed: true, Final: true, Line: t}
			if c := ejabberdCond.FindStringSubmatch(m[3]); c != nil {
				e.Condition = outcome.Condition(c[1])
			}
			out = append(out, e)
		case ejabberdFailOut.MatchString(l):
			m := ejabberdFailOut.FindStringSubmatch(l)
			e := Event{From: m[1], To: m[2], Failed: true, Final: true, Line: t}
			if c := ejabberdCond.FindStringSubmatch(m[3]); c != nil {
				e.Condition = outcome.Condition(c[1])
			}
			out = append(out, e)
		case ejabberdFailedIn.MatchString(l):
			// Names no domain: kept for the report by Relevant.
		}
	}
	return out
}

var (
	// jabberd2 names routes LOCAL/REMOTE: "incoming route 'a.test/b.test'
	// is now valid TLS" is b.test's stream to a.test.
	jabberd2Route = regexp.MustCompile(`(incoming|outgoing) route '([^'/]+)/([^']+)' is now (valid|invalid)(.*)$`)
)

func parseJabberd2(domain, log string) []Event {
	var out []Event
	for _, l := range lines(log) {
		m := jabberd2Route.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		e := Event{Inbound: m[1] == "incoming", Line: strings.TrimSpace(l)}
		e.From, e.To = m[2], m[3]
		if e.Inbound {
			e.From, e.To = m[3], m[2]
		}
		switch {
		case m[4] == "invalid":
			// Logged for type='invalid' and for a dialback error alike:
			// no condition.
			e.Failed, e.Final = true, true
		case strings.Contains(m[5], "TLS"):
			e.Method = outcome.TLSDialback
		default:
			e.Method = outcome.TCPDialback
		}
		out = append(out, e)
	}
	return out
}

// lines splits a log, bounding each line: a log line a peer can make
// long (it quotes what the peer sent) costs no more than 4 KiB.
func lines(log string) []string {
	ls := strings.Split(log, "\n")
	for i, l := range ls {
		if len(l) > 4096 {
			ls[i] = l[:4096]
		}
	}
	return ls
}

// Verdict is what two servers' logs say of the stream from one to the
// other.
type Verdict struct {
	// Method is the method the receiver accepted the stream with (or,
	// when its log does not say, the initiator's view of it).
	Method outcome.Method
	// Failed is set when a log says the stream failed for good, and no
	// log says it authenticated; Condition is the condition named.
	Failed    bool
	Condition outcome.Condition
	// Lines are the relevant lines of both logs, initiator's first.
	Lines []string
}

// Settled reports whether the logs have come to a verdict.
func (v Verdict) Settled() bool { return v.Method != 0 || v.Failed }

// Outcome is the verdict as an outcome, with only what logs say: the
// method, or a failure with the condition a log named (its step and
// side are not in the logs, and are left unset).
func (v Verdict) Outcome() outcome.Outcome {
	if v.Method != 0 {
		return outcome.Succeeded(v.Method)
	}
	if !v.Failed {
		return outcome.AnyFailure()
	}
	msg := ""
	if len(v.Lines) > 0 {
		msg = "from the logs: " + v.Lines[len(v.Lines)-1]
	}
	return outcome.Failed(outcome.Failure{Condition: v.Condition, Message: msg})
}

// Judge returns the verdict on the stream from initiator to receiver
// from the events of the initiator's log (in) and the receiver's (re).
func Judge(from, to string, in, re []Event) Verdict {
	var v Verdict
	var failed *Event
	var initMethod outcome.Method
	for _, group := range [][]Event{in, re} {
		for i := range group {
			e := group[i]
			if e.From != from || e.To != to {
				continue
			}
			v.Lines = append(v.Lines, e.Line)
			switch {
			case e.Method != 0 && e.Inbound:
				v.Method = e.Method
			case e.Method != 0:
				initMethod = e.Method
			case e.Final && failed == nil:
				failed = &group[i]
			}
		}
	}
	if v.Method == 0 {
		v.Method = initMethod
	}
	if v.Method == 0 && failed != nil {
		v.Failed, v.Condition = true, failed.Condition
	}
	return v
}
