package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/federation"
	"xmppneg/sim/realserver"
)

// FederationPair is two real servers to make meet: A and B, each a
// setting of a kind the realserver package knows.
type FederationPair struct {
	A, B             realserver.Setting
	DomainA, DomainB string
}

// ID names the pair in negotiation ids: "prosody.require-encryption+dialback--ejabberd.starttls-false+dialback".
func (p FederationPair) ID() string {
	return p.A.Kind() + "." + hostLabel(p.A.ID()) + "--" + p.B.Kind() + "." + hostLabel(p.B.ID())
}

// FederationOptions tune Federate.
type FederationOptions struct {
	federation.Options
	// Suite names the negotiations' suite ("federate" when empty), and
	// Source where the pair was declared.
	Suite, Source string
}

// Federate makes the pair's servers meet (federation.Run) and returns
// one negotiation per direction, "a-to-b" then "b-to-a": what was
// observed, what the two profiles predict (the oracle) and what the
// engine playing both profiles came to. A direction passes when the
// observation and the engine both match the prediction and the logs do
// not contradict the recording. Without the relay the observation comes
// from the logs alone, which name no step and no side: it is then
// compared on the method, or on the failure and the condition the logs
// name, and a note says so.
func Federate(ctx context.Context, p FederationPair, opt FederationOptions) ([]*Negotiation, *federation.Result, error) {
	suite := opt.Suite
	if suite == "" {
		suite = "federate"
	}
	if opt.PKI == nil {
		pki, err := certs.New()
		if err != nil {
			return nil, nil, err
		}
		opt.PKI = pki
	}
	a := federation.Server{Setting: p.A, Domain: p.DomainA}
	b := federation.Server{Setting: p.B, Domain: p.DomainB}
	res, err := federation.Run(ctx, a, b, opt.Options)
	if err != nil {
		return nil, nil, err
	}
	var out []*Negotiation
	for _, d := range res.Directions {
		in, re := a, b
		if d.Name == "b-to-a" {
			in, re = b, a
		}
		c := &Case{ID: fmt.Sprintf("%s/%s/%s", suite, p.ID(), d.Name), Suite: suite,
			Name:   fmt.Sprintf("%s %s → %s %s", in.Setting.Kind(), in.Domain, re.Setting.Kind(), re.Domain),
			Source: opt.Source, Direction: d.Name, Expect: Expect{Oracle: Predicted},
			Initiator: Endpoint{Domain: in.Domain, Settings: in.Setting.Policy(), Server: in.Setting},
			Receiver:  Endpoint{Domain: re.Domain, Settings: re.Setting.Policy(), Server: re.Setting}}
		pred := federation.Predict(c.Initiator.Settings, c.Receiver.Settings)
		n := &Negotiation{Case: c, Prediction: &pred, Expected: pred.Outcome}
		n.Result = &sim.Result{Initiator: in.Domain, Receiver: re.Domain, Outcome: d.Observed, Transcript: d.Transcript,
			TLS: d.TLS, Notes: d.Notes, Duration: d.Duration, Offers: []sim.Offer{}}
		emu, err := federation.Emulate(ctx, c.Initiator.Settings, c.Receiver.Settings, in.Domain, re.Domain, res.Timeout, opt.PKI)
		if err != nil {
			return nil, nil, fmt.Errorf("the engine playing both profiles: %w", err)
		}
		n.Emulated = emu
		n.ServerLog = strings.Join(d.Logs.Lines, "\n")
		n.judgeFederation(d)
		out = append(out, n)
	}
	return out, res, nil
}

// judgeFederation compares one direction's observation and emulation
// with the prediction.
func (n *Negotiation) judgeFederation(d federation.Direction) {
	got, want := n.Observed(), n.Expected
	var why []string
	if d.Source == "logs" {
		n.Note = "classified from the logs alone (--no-relay): compared on the method, or on the failure and the condition a log names"
		if !logMatch(got, want) {
			why = append(why, fmt.Sprintf("oracle predicted %s, the logs say %s", want, got))
		}
	} else if !got.Match(want) {
		why = append(why, fmt.Sprintf("oracle predicted %s, observed %s", want, got))
	}
	if emu := n.Emulated.Outcome; !emu.Match(want) {
		why = append(why, fmt.Sprintf("the engine playing both profiles came to %s, predicted %s", emu, want))
	}
	if d.CrossCheck != "" {
		why = append(why, "the logs contradict the recording: "+d.CrossCheck)
	}
	if v := invariants(n.Case, n.Result); len(v) > 0 {
		why = append(why, v...)
	}
	n.Pass = len(why) == 0
	n.Why = strings.Join(why, "; ")
	if n.Pass && d.Source != "logs" && !got.Same(want) && !got.OK() {
		n.Note = fmt.Sprintf("both fail, differently: predicted %s, observed %s", want, got)
	}
}

// logMatch compares what logs say (a method, or a failure with at most
// its condition) with a prediction.
func logMatch(got, want outcome.Outcome) bool {
	if got.OK() || want.OK() {
		return got.Method == want.Method
	}
	if got.Failure == nil || want.Failure == nil || got.Failure.Condition == "" || want.Failure.Condition == "" {
		return true
	}
	if got.Failure.Step == outcome.StepTimeout || want.Failure.Step == outcome.StepTimeout {
		return got.Failure.Step == want.Failure.Step
	}
	return got.Failure.Condition == want.Failure.Condition
}

// FederationReport is the report of federation negotiations: one suite
// of that name, every negotiation in it.
func FederationReport(suite string, ns []*Negotiation, took time.Duration, interrupted bool) *Report {
	s := &Suite{Name: suite, File: "federation"}
	for _, n := range ns {
		s.Cases = append(s.Cases, n.Case)
	}
	return &Report{Suites: []*Suite{s}, Negotiations: ns, Duration: took, Repeat: 1, Selected: len(ns), Interrupted: interrupted}
}
