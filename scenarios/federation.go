package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = federation.DefaultTimeout
	}
	emus := emulateBoth(ctx, a, b, timeout, opt.PKI)
	res, err := federation.Run(ctx, a, b, opt.Options)
	if err != nil {
		emus.wait()
		return nil, nil, err
	}
	ns, err := judgeFederation(ctx, p, res, emus, suite, opt.Source)
	return ns, res, err
}

// emulations are the engine's runs of both directions of a pair, made
// while the real servers meet: they need nothing of them, and when both
// wait out a deadline they wait together.
type emulations struct {
	done chan struct{}
	res  map[string]*sim.Result
	err  error
}

func emulateBoth(ctx context.Context, a, b federation.Server, timeout time.Duration, pki *certs.PKI) *emulations {
	e := &emulations{done: make(chan struct{}), res: map[string]*sim.Result{}}
	go func() {
		defer close(e.done)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, d := range []struct {
			name   string
			in, re federation.Server
		}{{"a-to-b", a, b}, {"b-to-a", b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := federation.Emulate(ctx, d.in.Setting.Policy(), d.re.Setting.Policy(), d.in.Domain, d.re.Domain, timeout, pki)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					e.err = err
				}
				e.res[d.name] = r
			}()
		}
		wg.Wait()
	}()
	return e
}

func (e *emulations) wait() (map[string]*sim.Result, error) {
	<-e.done
	return e.res, e.err
}

// judgeFederation makes one negotiation of each direction of res: what
// was observed, what the two profiles predict and what the engine
// playing both came to.
func judgeFederation(ctx context.Context, p FederationPair, res *federation.Result, e *emulations, suite, source string) ([]*Negotiation, error) {
	a, b := res.A, res.B
	emus, err := e.wait()
	if err != nil {
		return nil, fmt.Errorf("the engine playing both profiles: %w", err)
	}
	var out []*Negotiation
	for _, d := range res.Directions {
		in, re := a, b
		if d.Name == "b-to-a" {
			in, re = b, a
		}
		c := &Case{ID: fmt.Sprintf("%s/%s/%s", suite, p.ID(), d.Name), Suite: suite,
			Name:   fmt.Sprintf("%s %s → %s %s", in.Setting.Kind(), in.Domain, re.Setting.Kind(), re.Domain),
			Source: source, Direction: d.Name, Expect: Expect{Oracle: Predicted},
			Initiator: Endpoint{Domain: in.Domain, Settings: in.Setting.Policy(), Server: in.Setting},
			Receiver:  Endpoint{Domain: re.Domain, Settings: re.Setting.Policy(), Server: re.Setting}}
		pred := federation.Predict(c.Initiator.Settings, c.Receiver.Settings)
		n := &Negotiation{Case: c, Prediction: &pred, Expected: pred.Outcome}
		n.Result = &sim.Result{Initiator: in.Domain, Receiver: re.Domain, Outcome: d.Observed, Transcript: d.Transcript,
			TLS: d.TLS, Notes: d.Notes, Duration: d.Duration, Offers: []sim.Offer{}}
		n.Emulated = emus[d.Name]
		if n.Emulated == nil {
			return nil, fmt.Errorf("the engine playing both profiles: no run of %s", d.Name)
		}
		n.ServerLog = strings.Join(d.Logs.Lines, "\n")
		n.judgeFederation(d)
		out = append(out, n)
	}
	return out, nil
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

// fieldSettings are the settings of each server family the federation
// suite makes meet: its default and those that matter in the field
// (TLS required, no certificate, a certificate without clientAuth as
// public CAs issue them since 2026, dialback off, secure
// authentication). A later generation of a family (prosody-13) is
// given the same knobs; one it does not accept is left out, and said.
var fieldSettings = map[string][]map[string]string{
	"prosody": {
		{},
		{"s2s_require_encryption": "false"},
		{"dialback": "false"},
		{"s2s_secure_auth": "true"},
		{"cert": "no-client-auth"},
	},
	"ejabberd": {
		{},
		{"s2s_use_starttls": "optional"},
		{"s2s_use_starttls": "required"},
		{"s2s_use_starttls": "required", "dialback": "false"},
		{"s2s_use_starttls": "optional", "cert": "no-client-auth"},
	},
	"jabberd2": {
		{},
		{"require_tls": "true"},
		{"pemfile": "false"},
		{"cert": "no-client-auth"},
	},
}

// unstableFederations are the pairs of the plan (A's domain, B's) that
// do not come to one outcome every time, left out of the suite with why
// (docs/federation.md): a suite that passes only sometimes proves
// nothing. Each is still run by hand with xmppneg federate.
var unstableFederations = map[string]string{
	"ejabberd-starttls-required-dialback.test jabberd2-no-pemfile.test":                                                            ejabberdLegacyDialback,
	"ejabberd-24-starttls-required-dialback.test jabberd2-no-pemfile.test":                                                         ejabberdLegacyDialback,
	"ejabberd-starttls-optional-dialback-cert-no-client-auth.test ejabberd-24-starttls-optional-dialback-cert-no-client-auth.test": ejabberd24DialbackRetry,
}

const ejabberd24DialbackRetry = "ejabberd 24.12 whose EXTERNAL ejabberd 23.01 refuses (a certificate without clientAuth) retries with dialback on a new connection (as predicted: TLS Dialback), but in one make test of three (2026-12-02) that retry had not come within the suite's 3 s and the direction ended at the refused SASL"

const ejabberdLegacyDialback = "ejabberd requiring STARTTLS answers the db:result of jabberd2's pre-1.0 stream with <policy-violation/> when the two meet alone (as predicted), and with remote-server-not-found after trying to verify it in the suite's mesh, every time there: it depends on the state of its own failed stream to jabberd2, which this harness does not model"

// family is the server a kind is a generation of.
func family(kind string) string {
	for f := range fieldSettings {
		if kind == f || strings.HasPrefix(kind, f+"-") {
			return f
		}
	}
	return ""
}

// FederationPlan is the federation suite: the servers to start (each
// setting once, each serving a domain of its own) and the pairs of them
// to make meet.
type FederationPlan struct {
	Servers []federation.Server
	Pairs   []PlannedPair
	Sweeps  []Sweep
	// Skipped says which field settings a kind did not accept.
	Skipped []string
}

// PlannedPair is one federation of the plan: A and B are domains of
// its servers.
type PlannedPair struct {
	Sweep, A, B string
}

// PlanFederation plans the federation suite over kinds: for every two
// kinds (and every kind with itself), one server in its default
// setting meets the other in each of its field settings, each of the
// other's field settings meets the first in its default, and the i-th
// non-default settings of both meet; a kind meeting itself meets a
// second server in its default setting. Both directions of each pair
// are run, so both orders of initiation are covered.
func PlanFederation(kinds []*realserver.Kind) (*FederationPlan, error) {
	plan := &FederationPlan{}
	type srv struct{ domain, id, title string }
	settings := map[string][]srv{} // by kind: default first
	peers := map[string]srv{}      // by kind: its second default server
	for _, k := range kinds {
		f := family(k.Name)
		if f == "" {
			plan.Skipped = append(plan.Skipped, fmt.Sprintf("%s: no field settings known for it", k.Name))
			continue
		}
		for _, knobs := range fieldSettings[f] {
			s, err := k.Parse(knobs)
			if err != nil {
				plan.Skipped = append(plan.Skipped, fmt.Sprintf("%s %v: %v", k.Name, knobs, err))
				continue
			}
			d := hostLabel(k.Name+"-"+s.ID()) + ".test"
			plan.Servers = append(plan.Servers, federation.Server{Setting: s, Domain: d, Group: "mesh"})
			settings[k.Name] = append(settings[k.Name], srv{d, s.ID(), s.String()})
		}
		if len(settings[k.Name]) == 0 {
			continue
		}
		def := plan.Servers[len(plan.Servers)-len(settings[k.Name])]
		peer := federation.Server{Setting: def.Setting, Domain: hostLabel(k.Name+"-peer") + ".test"}
		plan.Servers = append(plan.Servers, peer)
		peers[k.Name] = srv{peer.Domain, "peer " + def.Setting.ID(), def.Setting.String()}
	}
	var names []string
	for _, k := range kinds {
		if len(settings[k.Name]) > 0 {
			names = append(names, k.Name)
		}
	}
	for i, x := range names {
		for _, y := range names[i:] {
			sw := Sweep{Suite: "federation", Name: x + " × " + y, Titles: map[string]string{},
				PartnerTitles: map[string]string{}, PartnerShort: map[string]string{}, Federation: true, RowServer: x, PartnerServer: y}
			xs, ys := settings[x], settings[y]
			var pairs [][2]srv
			if x == y {
				for _, s := range ys {
					pairs = append(pairs, [2]srv{peers[x], s})
				}
				xs = []srv{peers[x]}
			} else {
				for _, s := range ys {
					pairs = append(pairs, [2]srv{xs[0], s})
				}
				for _, s := range xs[1:] {
					pairs = append(pairs, [2]srv{s, ys[0]})
				}
				for j := 1; j < min(len(xs), len(ys)); j++ {
					pairs = append(pairs, [2]srv{xs[j], ys[j]})
				}
			}
			for _, s := range xs {
				sw.Rows = append(sw.Rows, s.id)
				sw.Titles[s.id] = s.title
			}
			for _, s := range ys {
				sw.Partners = append(sw.Partners, s.id)
				sw.PartnerTitles[s.id], sw.PartnerShort[s.id] = s.title, s.id
			}
			for _, p := range pairs {
				if why, ok := unstableFederations[p[0].domain+" "+p[1].domain]; ok {
					plan.Skipped = append(plan.Skipped, fmt.Sprintf("%s meeting %s: %s", p[0].domain, p[1].domain, why))
					continue
				}
				plan.Pairs = append(plan.Pairs, PlannedPair{Sweep: sw.Name, A: p[0].domain, B: p[1].domain})
			}
			plan.Sweeps = append(plan.Sweeps, sw)
		}
	}
	if len(plan.Pairs) == 0 {
		return nil, fmt.Errorf("federation: no two real servers to make meet (kinds: %d)", len(kinds))
	}
	return plan, nil
}

// RunFederation starts the plan's servers once, as one mesh, and makes
// every pair meet, jobs pairs at a time; each is called with every
// negotiation as it ends. The report's grids are the plan's sweeps: one
// per two kinds, rows A's settings, columns B's, each cell split by
// direction.
func RunFederation(ctx context.Context, plan *FederationPlan, opt federation.Options, jobs int, each func(*Negotiation)) (*Report, error) {
	start := time.Now()
	if opt.PKI == nil {
		pki, err := certs.New()
		if err != nil {
			return nil, err
		}
		opt.PKI = pki
	}
	mesh, err := federation.StartMesh(ctx, plan.Servers, opt)
	if err != nil {
		return nil, err
	}
	defer mesh.Close()
	byDomain := map[string]federation.Server{}
	for _, s := range plan.Servers {
		byDomain[s.Domain] = s
	}
	out := make([][]*Negotiation, len(plan.Pairs))
	errs := make([]error, len(plan.Pairs))
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, p := range plan.Pairs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			a, b := byDomain[p.A], byDomain[p.B]
			emus := emulateBoth(ctx, a, b, mesh.Timeout(), mesh.PKI())
			res, err := mesh.Federate(ctx, p.A, p.B)
			if err != nil {
				emus.wait()
				errs[i] = err
				return
			}
			pair := FederationPair{A: a.Setting, B: b.Setting, DomainA: a.Domain, DomainB: b.Domain}
			ns, err := judgeFederation(ctx, pair, res, emus, "federation", "the federation suite (scenarios.PlanFederation)")
			if err != nil {
				errs[i] = err
				return
			}
			for _, n := range ns {
				n.Case.Sweep, n.Case.Row, n.Case.Partner = p.Sweep, rowID(a), rowID(b)
				n.Case.RowInitiates = n.Case.Direction == "a-to-b"
			}
			out[i] = ns
			if each != nil {
				mu.Lock()
				for _, n := range ns {
					each(n)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var all []*Negotiation
	for _, ns := range out {
		all = append(all, ns...)
	}
	rep := FederationReport("federation", all, time.Since(start), ctx.Err() != nil)
	rep.Selected = 2 * len(plan.Pairs)
	rep.Suites[0].Sweeps = plan.Sweeps
	return rep, nil
}

// rowID is a server's setting id in the grids; a kind's second default
// server is its "peer".
func rowID(s federation.Server) string {
	if strings.HasSuffix(s.Domain, "-peer.test") {
		return "peer " + s.Setting.ID()
	}
	return s.Setting.ID()
}
