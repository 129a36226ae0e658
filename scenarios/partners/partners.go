// Package partners answers, for each entry of a gateway's XMPP partner
// list, the questions its administrator has: will this partner work, in
// both directions, with which method; if not, what blocks it (every
// blocker, not only the first); and what to change, as a
// Set-CsXmppAllowedPartner line that a real negotiation has shown to
// work. Every answer comes from negotiations run through the scenarios
// runner; the documented matrix is only quoted.
package partners

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/outcome"
	"xmppneg/scenarios"
	"xmppneg/sim"
)

// Direction says which end opens the connection.
type Direction string

// The two directions of a partnership.
const (
	GatewayInitiates Direction = "gateway-initiates"
	PartnerInitiates Direction = "partner-initiates"
)

// Directions lists both, gateway first.
var Directions = []Direction{GatewayInitiates, PartnerInitiates}

// Options are what Evaluate needs besides the list.
type Options struct {
	// Gateway is how the gateway negotiates: its behaviour, certificate
	// and secret. Each entry's TlsNegotiation, SaslNegotiation and
	// SupportDialbackNegotiation replace its Policy. The zero value is
	// the lync2013-gateway profile.
	Gateway *policy.Settings
	// GatewayDomain is the gateway's XMPP domain (default contoso.test).
	GatewayDomain string
	// Declared says what each partner runs, by domain: a profile or a
	// spec. A partner not declared is tried against Candidates.
	Declared map[string]Declared
	// Timeout bounds each negotiation (default sim.DefaultTimeout). The
	// endpoints are the harness's own, on loopback, and finish in
	// milliseconds unless one end waits for something that never comes;
	// but on a loaded machine (the race detector, other jobs) a short
	// deadline would cut good negotiations short and change the answer.
	Timeout time.Duration
	// Jobs is how many negotiations run at once (default 4 per CPU: a
	// negotiation that waits for a deadline holds a worker).
	Jobs int
}

// Declared is what a partner is known to run.
type Declared struct {
	Label    string          // as given: a profile name or a spec
	Settings policy.Settings // its settings, certificate included
}

// A Candidate is one of the servers an undeclared partner might run: the
// shipped profiles of real servers and the 18 settings of a Lync
// partner entry.
type Candidate struct {
	Name     string
	Settings policy.Settings
}

// Candidates are what an undeclared partner is tried against.
func Candidates() []Candidate {
	var out []Candidate
	for _, p := range policy.Profiles() {
		if p.Name == "xmppneg" {
			continue
		}
		out = append(out, Candidate{Name: p.Name, Settings: p.Settings})
	}
	for _, r := range policy.Full.Rows {
		s := policy.DefaultSettings()
		s.Policy = r.Policy
		out = append(out, Candidate{Name: r.ID, Settings: s})
	}
	return out
}

// Status is a partner's verdict.
type Status string

// The verdicts.
const (
	Works   Status = "works"   // both directions, with the strongest method any gateway setting gets
	Weaker  Status = "weaker"  // both directions, but another gateway setting gets a stronger method
	Fails   Status = "fails"   // at least one direction does not authenticate
	Unknown Status = "unknown" // nothing declared: see the candidates
)

// Report is the evaluation of a partner list.
type Report struct {
	Gateway  string     `json:"gateway"` // its domain and settings (certificate, behaviour)
	Partners []*Partner `json:"partners"`
	Summary  Summary    `json:"summary"`
	// Notes are what the list's reader passed over. They name lines of
	// the file, so they stay out of the JSON, which is the same for one
	// list whatever format it came in.
	Notes    []lyncpartner.Note `json:"-"`
	Duration time.Duration      `json:"-"`
}

// Summary counts the verdicts.
type Summary struct {
	Partners     int `json:"partners"`
	Works        int `json:"works"`
	Weaker       int `json:"weaker"`
	Fails        int `json:"fails"`
	Unknown      int `json:"unknown"`
	Fixes        int `json:"fixes"`
	Negotiations int `json:"negotiations"` // run, each distinct one once
}

// Partner is one entry's evaluation.
type Partner struct {
	Entry    lyncpartner.Entry `json:"-"`
	Row      string            `json:"row"`
	Valid    bool              `json:"valid"`
	Warnings []Finding         `json:"warnings"`
	// Runs is what the partner was declared to run ("profile
	// prosody-0.12", a spec), or "unknown".
	Runs         string         `json:"partner_profile"`
	Status       Status         `json:"status"`
	Negotiations []*Negotiation `json:"negotiations"`
	// Candidates, for an undeclared partner: how the entry fares with
	// each server it might run, and with how many both ways.
	Candidates         []*CandidateResult `json:"candidates,omitempty"`
	CandidatesBothWays int                `json:"-"`
	Blockers           []Finding          `json:"blockers"`
	Fix                *Fix               `json:"fix"`
}

// Finding is a warning or a blocker: a stable code and what it means.
type Finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Korean is the source document's own words, for a warning it gives.
	Korean string `json:"-"`
}

// Negotiation is one real negotiation of the partnership.
type Negotiation struct {
	Direction   Direction         `json:"direction"`
	Outcome     outcome.Outcome   `json:"outcome"`
	Explanation string            `json:"explanation"`
	Recovered   []outcome.Failure `json:"recovered"`
	// Transcript is the negotiation's transcript, and TranscriptFile
	// where it was written (with --out).
	Transcript     string `json:"-"`
	TranscriptFile string `json:"transcript_file,omitempty"`
}

// CandidateResult is how an entry fares with one candidate server.
type CandidateResult struct {
	Name     string            `json:"name"`
	Outcomes []outcome.Outcome `json:"outcomes"` // gateway-initiates, partner-initiates
}

// BothWays reports whether both directions authenticate.
func (c *CandidateResult) BothWays() bool { return c.Outcomes[0].OK() && c.Outcomes[1].OK() }

// Fix is a change shown by real negotiations to make the partnership
// work, or work better.
type Fix struct {
	// Where is what changes: "gateway" (the partner entry, Cmdlet says
	// how), "certificate" or "partner".
	Where    string        `json:"where"`
	Cmdlet   string        `json:"cmdlet,omitempty"`
	Settings policy.Policy `json:"settings"` // the gateway entry's settings with the fix
	// Outcomes are what the negotiations with the fix came to, gateway
	// initiating then partner initiating; for an undeclared partner,
	// Works says with how many candidates.
	Outcomes []outcome.Outcome `json:"outcomes"`
	Works    string            `json:"works,omitempty"`
	Changes  []string          `json:"changes"` // the parameters that change
	Why      string            `json:"why"`
}

// strength ranks a method: SASL over TLS > TLS Dialback > TCP Dialback
// > none.
func strength(o outcome.Outcome) int {
	if !o.OK() {
		return 0
	}
	return len(outcome.Methods) + 1 - int(o.Method)
}

// pairScore ranks a pair of outcomes: both directions must authenticate;
// then the weaker direction counts, then the stronger.
func pairScore(a, b outcome.Outcome) [2]int {
	sa, sb := strength(a), strength(b)
	if sa == 0 || sb == 0 {
		return [2]int{0, 0}
	}
	return [2]int{min(sa, sb), max(sa, sb)}
}

// fixable lists the settings a fix may propose: the valid rows of the
// full matrix (a fix never lands on what the document calls invalid).
func fixable() []policy.Policy {
	var out []policy.Policy
	for _, r := range policy.Full.Rows {
		if r.Valid {
			out = append(out, r.Policy)
		}
	}
	return out
}

// preferred breaks a tie between two settings that authenticate the
// same way with as many changes: the one the document warns nothing
// about, then the safer.
func preferred(a, b policy.Policy) bool {
	wa, wb := warnings(a), warnings(b)
	if wa != wb {
		return wa < wb
	}
	return safer(a, b)
}

func warnings(p policy.Policy) int {
	r, _ := policy.Full.Lookup(p)
	return len(r.Warnings)
}

// safer breaks a tie between two settings that authenticate the same
// way with as many changes: the one that demands more TLS, then more
// SASL, keeps more streams encrypted should the partner change.
func safer(a, b policy.Policy) bool {
	rank := func(l policy.Level) int { return 2 - int(l) } // Required 2, Optional 1, NotSupported 0
	if rank(a.TLS) != rank(b.TLS) {
		return rank(a.TLS) > rank(b.TLS)
	}
	return rank(a.SASL) > rank(b.SASL)
}

func scoreOf(o [2]outcome.Outcome) [2]int { return pairScore(o[0], o[1]) }

func better(a, b [2]int) bool { return a[0] > b[0] || a[0] == b[0] && a[1] > b[1] }

// changes lists the parameters of to that differ from from.
func changes(from, to policy.Policy) []string {
	var out []string
	if from.TLS != to.TLS {
		out = append(out, "TlsNegotiation")
	}
	if from.SASL != to.SASL {
		out = append(out, "SaslNegotiation")
	}
	if from.Dialback != to.Dialback {
		out = append(out, "SupportDialbackNegotiation")
	}
	return out
}

// Evaluate runs the negotiations that answer for each entry and builds
// the report. ctx cancels it.
func Evaluate(ctx context.Context, entries []lyncpartner.Entry, notes []lyncpartner.Note, opt Options) (*Report, error) {
	start := time.Now()
	if opt.Gateway == nil {
		p, _ := policy.LookupProfile("lync2013-gateway")
		opt.Gateway = &p.Settings
	}
	if opt.GatewayDomain == "" {
		opt.GatewayDomain = "contoso.test"
	}
	if opt.Timeout <= 0 {
		opt.Timeout = sim.DefaultTimeout
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 4 * runtime.NumCPU()
	}
	ev := &evaluator{opt: opt, memo: map[string]outcomeRun{}}
	rep := &Report{Gateway: opt.GatewayDomain + " " + describeGateway(*opt.Gateway), Notes: notes}
	if rep.Notes == nil {
		rep.Notes = []lyncpartner.Note{}
	}
	for _, e := range entries {
		p := &Partner{Entry: e, Warnings: []Finding{}, Blockers: []Finding{}, Negotiations: []*Negotiation{}}
		v, err := policy.Validate(e.Policy)
		if err != nil {
			return nil, err
		}
		p.Row, p.Valid = v.Row, v.Valid
		for _, w := range append(v.Warnings, v.Errors...) {
			p.Warnings = append(p.Warnings, Finding{Code: w.Code, Message: w.Message, Korean: w.Korean})
		}
		rep.Partners = append(rep.Partners, p)
	}
	// Phase one: every partnership as it is, and for undeclared
	// partners the entry against every candidate.
	for _, p := range rep.Partners {
		if d, ok := ev.declared(p.Entry.Domain); ok {
			p.Runs = d.Label
			for _, dir := range Directions {
				ev.want(ev.key(p.Entry.Domain, ev.gateway(p.Entry.Policy), d.Settings, dir))
			}
			continue
		}
		p.Runs = "unknown"
		for _, c := range Candidates() {
			for _, dir := range Directions {
				ev.want(ev.key("", ev.gateway(p.Entry.Policy), c.Settings, dir))
			}
		}
	}
	if err := ev.run(ctx); err != nil {
		return nil, err
	}
	// Phase two: the search for fixes, and what each certificate does.
	for _, p := range rep.Partners {
		ev.wantSearch(p)
	}
	if err := ev.run(ctx); err != nil {
		return nil, err
	}
	// Phase three: what the partner would have to change, where nothing
	// on the gateway's side helps.
	for _, p := range rep.Partners {
		ev.wantPartnerSide(p)
	}
	if err := ev.run(ctx); err != nil {
		return nil, err
	}
	for _, p := range rep.Partners {
		ev.judge(p)
		switch p.Status {
		case Works:
			rep.Summary.Works++
		case Weaker:
			rep.Summary.Weaker++
		case Fails:
			rep.Summary.Fails++
		case Unknown:
			rep.Summary.Unknown++
		}
		if p.Fix != nil {
			rep.Summary.Fixes++
		}
	}
	rep.Summary.Partners = len(rep.Partners)
	rep.Summary.Negotiations = len(ev.memo)
	rep.Duration = time.Since(start)
	return rep, nil
}

// describeGateway is the gateway's settings besides each entry's
// policy, as a spec reads them.
func describeGateway(s policy.Settings) string {
	spec := s.String()
	if _, rest, ok := strings.Cut(spec, "cert="); ok {
		return "(cert=" + rest + ")"
	}
	return "(" + spec + ")"
}

// evaluator runs negotiations, each distinct one once.
type evaluator struct {
	opt     Options
	memo    map[string]outcomeRun
	pending []runKey
}

// outcomeRun is the result of one negotiation.
type outcomeRun struct {
	out        outcome.Outcome
	explain    string
	recovered  []outcome.Failure
	transcript string
}

// runKey names one negotiation: the partner's domain ("" for the
// searches, which run under a generic name so that partners share
// them), both ends' settings, the direction.
type runKey struct {
	domain           string
	gateway, partner policy.Settings
	direction        Direction
}

func (k runKey) String() string {
	return fmt.Sprintf("%s|%s|%q|%s|%q|%s", k.domain, k.gateway, k.gateway.Secret, k.partner, k.partner.Secret, k.direction)
}

func (ev *evaluator) key(domain string, gw, partner policy.Settings, dir Direction) runKey {
	return runKey{domain: domain, gateway: gw, partner: partner, direction: dir}
}

func (ev *evaluator) declared(domain string) (Declared, bool) {
	d, ok := ev.opt.Declared[strings.ToLower(domain)]
	return d, ok
}

// gateway is the gateway's settings for an entry with policy p.
func (ev *evaluator) gateway(p policy.Policy) policy.Settings {
	s := *ev.opt.Gateway
	s.Policy = p
	return s
}

func (ev *evaluator) want(k runKey) {
	if _, ok := ev.memo[k.String()]; ok {
		return
	}
	ev.memo[k.String()] = outcomeRun{} // reserved: filled by run
	ev.pending = append(ev.pending, k)
}

func (ev *evaluator) get(k runKey) outcomeRun {
	r, ok := ev.memo[k.String()]
	if !ok {
		panic("partners: negotiation not run: " + k.String())
	}
	return r
}

// run runs what is pending, all at once.
func (ev *evaluator) run(ctx context.Context) error {
	if len(ev.pending) == 0 {
		return nil
	}
	cases := make([]*scenarios.Case, len(ev.pending))
	for i, k := range ev.pending {
		cases[i] = ev.caseFor(k)
	}
	ns := scenarios.Run(ctx, cases, scenarios.Options{Jobs: ev.opt.Jobs})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, n := range ns {
		k := ev.pending[i]
		r := outcomeRun{out: n.Observed()}
		if n.Result == nil {
			r.explain = n.Why
		} else {
			r.explain = n.Result.Explain()
			r.recovered = n.Result.Recovered
			r.transcript = n.Result.TranscriptText()
		}
		ev.memo[k.String()] = r
	}
	ev.pending = nil
	return nil
}

// caseFor is the scenario case of one negotiation.
func (ev *evaluator) caseFor(k runKey) *scenarios.Case {
	partnerDomain := k.domain
	if partnerDomain == "" {
		partnerDomain = "partner.test"
	}
	// The partner waits longer than the gateway: when both wait for
	// something that never comes, the gateway's deadline ends it, the
	// same way every run.
	gw := scenarios.Endpoint{Domain: ev.opt.GatewayDomain, Settings: k.gateway, Timeout: ev.opt.Timeout}
	pt := scenarios.Endpoint{Domain: partnerDomain, Settings: k.partner, Timeout: 2 * ev.opt.Timeout}
	c := &scenarios.Case{ID: "partners/" + partnerDomain + "/" + string(k.direction), Suite: "partners",
		Name: partnerDomain + " " + string(k.direction), Source: "partners",
		Expect: scenarios.Expect{Oracle: scenarios.Unchecked}}
	if k.direction == GatewayInitiates {
		c.Initiator, c.Receiver = gw, pt
	} else {
		c.Initiator, c.Receiver = pt, gw
	}
	return c
}

// partnerSettings is what the partner runs in p's phase-one
// negotiations; ok is false for an undeclared partner.
func (ev *evaluator) partnerSettings(p *Partner) (policy.Settings, bool) {
	d, ok := ev.declared(p.Entry.Domain)
	return d.Settings, ok
}

// pair is the outcomes both ways of one configuration.
func (ev *evaluator) pair(domain string, gw, partner policy.Settings) [2]outcome.Outcome {
	return [2]outcome.Outcome{
		ev.get(ev.key(domain, gw, partner, GatewayInitiates)).out,
		ev.get(ev.key(domain, gw, partner, PartnerInitiates)).out,
	}
}

// withValidCert returns s with a valid certificate.
func withValidCert(s policy.Settings) policy.Settings {
	s.Cert = certs.Valid
	return s
}

// wantSearch asks for the negotiations that find a fix: every gateway
// setting against the partner (or every candidate), and the same with
// valid certificates where a certificate is not.
func (ev *evaluator) wantSearch(p *Partner) {
	partner, declared := ev.partnerSettings(p)
	for _, gp := range policy.All() {
		gw := ev.gateway(gp)
		if declared {
			ev.wantPair("", gw, partner)
			if gw.Cert != certs.Valid {
				ev.wantPair("", withValidCert(gw), partner)
			}
			if partner.Cert != certs.Valid {
				ev.wantPair("", gw, withValidCert(partner))
				ev.wantPair("", withValidCert(gw), withValidCert(partner))
			}
			continue
		}
		for _, c := range Candidates() {
			ev.wantPair("", gw, c.Settings)
		}
	}
}

func (ev *evaluator) wantPair(domain string, gw, partner policy.Settings) {
	for _, dir := range Directions {
		ev.want(ev.key(domain, gw, partner, dir))
	}
}

// wantPartnerSide asks, for a declared partner that no gateway setting
// makes work, how the partner's own 18 settings fare with the entry.
func (ev *evaluator) wantPartnerSide(p *Partner) {
	partner, declared := ev.partnerSettings(p)
	if !declared {
		return
	}
	if _, ok := ev.bestGateway(p, partner, ev.gateway(p.Entry.Policy).Cert, partner.Cert); ok {
		return
	}
	for _, pp := range policy.All() {
		s := partner
		s.Policy = pp
		ev.wantPair("", ev.gateway(p.Entry.Policy), s)
	}
}

// bestGateway finds the gateway setting that works both ways with the
// strongest methods and, among those, the fewest changed parameters,
// with the certificates given.
func (ev *evaluator) bestGateway(p *Partner, partner policy.Settings, gwCert, partnerCert certs.State) (policy.Policy, bool) {
	partner.Cert = partnerCert
	var best policy.Policy
	var bestScore [2]int
	bestChanges := 4
	for _, gp := range fixable() {
		gw := ev.gateway(gp)
		gw.Cert = gwCert
		o := ev.pair("", gw, partner)
		sc := pairScore(o[0], o[1])
		if sc[0] == 0 {
			continue
		}
		n := len(changes(p.Entry.Policy, gp))
		if better(sc, bestScore) || sc == bestScore && (n < bestChanges || n == bestChanges && preferred(gp, best)) {
			best, bestScore, bestChanges = gp, sc, n
		}
	}
	return best, bestScore[0] > 0
}

// judge reads the negotiations into p's verdict, blockers and fix.
func (ev *evaluator) judge(p *Partner) {
	partner, declared := ev.partnerSettings(p)
	gw := ev.gateway(p.Entry.Policy)
	if !declared {
		ev.judgeUnknown(p)
		return
	}
	for _, dir := range Directions {
		r := ev.get(ev.key(p.Entry.Domain, gw, partner, dir))
		p.Negotiations = append(p.Negotiations, &Negotiation{Direction: dir, Outcome: r.out, Explanation: r.explain,
			Recovered: nonNil(r.recovered), Transcript: r.transcript})
	}
	now := [2]outcome.Outcome{p.Negotiations[0].Outcome, p.Negotiations[1].Outcome}
	score := pairScore(now[0], now[1])
	p.Blockers = ev.blockers(p, gw, partner, now)

	best, ok := ev.bestGateway(p, partner, gw.Cert, partner.Cert)
	switch {
	case ok && better(scoreOf(ev.pairFor(best, partner)), score):
		o := ev.pairFor(best, partner)
		p.Fix = &Fix{Where: "gateway", Cmdlet: lyncpartner.Cmdlet(p.Entry.Identity, p.Entry.Policy, best), Settings: best,
			Outcomes: o[:], Changes: changes(p.Entry.Policy, best),
			Why: fmt.Sprintf("with %s the partnership authenticates with %s", best.Partner(), describePair(o))}
	case !ok:
		p.Fix = ev.elsewhere(p, gw, partner)
	}
	switch {
	case score[0] == 0:
		p.Status = Fails
	case p.Fix != nil:
		p.Status = Weaker
	default:
		p.Status = Works
	}
}

func (ev *evaluator) pairFor(gp policy.Policy, partner policy.Settings) [2]outcome.Outcome {
	return ev.pair("", ev.gateway(gp), partner)
}

// elsewhere is the fix when no gateway setting helps: a certificate, or
// the partner's own settings, each shown to work by a negotiation.
func (ev *evaluator) elsewhere(p *Partner, gw, partner policy.Settings) *Fix {
	type try struct {
		gwCert, ptCert certs.State
		what           string
	}
	var tries []try
	if gw.Cert != certs.Valid {
		tries = append(tries, try{certs.Valid, partner.Cert, fmt.Sprintf("replace the gateway's certificate (%s) with a valid one", gw.Cert)})
	}
	if partner.Cert != certs.Valid {
		tries = append(tries, try{gw.Cert, certs.Valid, fmt.Sprintf("the partner must replace its certificate (%s) with one the gateway trusts, for its domain", partner.Cert)})
	}
	if gw.Cert != certs.Valid && partner.Cert != certs.Valid {
		tries = append(tries, try{certs.Valid, certs.Valid, fmt.Sprintf("both certificates must be replaced (the gateway's is %s, the partner's %s)", gw.Cert, partner.Cert)})
	}
	for _, t := range tries {
		best, ok := ev.bestGateway(p, partner, t.gwCert, t.ptCert)
		if !ok {
			continue
		}
		g := ev.gateway(best)
		g.Cert = t.gwCert
		pt := partner
		pt.Cert = t.ptCert
		o := ev.pair("", g, pt)
		f := &Fix{Where: "certificate", Settings: best, Outcomes: o[:], Changes: changes(p.Entry.Policy, best)}
		f.Why = t.what
		if len(f.Changes) > 0 {
			f.Cmdlet = lyncpartner.Cmdlet(p.Entry.Identity, p.Entry.Policy, best)
			f.Why += ", and set " + best.Partner()
		}
		f.Why += fmt.Sprintf(": then the partnership authenticates with %s", describePair(o))
		return f
	}
	// The partner's own settings, with the entry as it is.
	var bestP policy.Policy
	var bestScore [2]int
	for _, pp := range policy.All() {
		s := partner
		s.Policy = pp
		o := ev.pair("", gw, s)
		if sc := pairScore(o[0], o[1]); better(sc, bestScore) {
			bestP, bestScore = pp, sc
		}
	}
	if bestScore[0] > 0 {
		s := partner
		s.Policy = bestP
		o := ev.pair("", gw, s)
		return &Fix{Where: "partner", Settings: p.Entry.Policy, Outcomes: o[:], Changes: []string{},
			Why: fmt.Sprintf("no gateway setting works with this partner; the partner's server must negotiate as tls=%s,sasl=%s,dialback=%t (%s): then the partnership authenticates with %s",
				bestP.TLS, bestP.SASL, bestP.Dialback, bestP.Partner(), describePair(o))}
	}
	return nil
}

// judgeUnknown rates an entry against every candidate and looks for the
// gateway setting that works with the most.
func (ev *evaluator) judgeUnknown(p *Partner) {
	p.Status = Unknown
	count := func(gp policy.Policy) (n, sum int) {
		for _, c := range Candidates() {
			o := ev.pair("", ev.gateway(gp), c.Settings)
			if sc := pairScore(o[0], o[1]); sc[0] > 0 {
				n++
				sum += sc[0]
			}
		}
		return n, sum
	}
	for _, c := range Candidates() {
		o := ev.pair("", ev.gateway(p.Entry.Policy), c.Settings)
		p.Candidates = append(p.Candidates, &CandidateResult{Name: c.Name, Outcomes: o[:]})
	}
	n0, s0 := count(p.Entry.Policy)
	p.CandidatesBothWays = n0
	bestN, bestS, bestC := n0, s0, 0
	var best *policy.Policy
	for _, gp := range fixable() {
		n, s := count(gp)
		c := len(changes(p.Entry.Policy, gp))
		if n > bestN || n == bestN && s > bestS || best != nil && n == bestN && s == bestS && (c < bestC || c == bestC && preferred(gp, *best)) {
			gp := gp
			best, bestN, bestS, bestC = &gp, n, s, c
		}
	}
	total := len(Candidates())
	if n0 < total {
		var failing []string
		for _, c := range p.Candidates {
			if !c.BothWays() {
				failing = append(failing, c.Name)
			}
		}
		p.Blockers = append(p.Blockers, Finding{Code: "unknown-partner",
			Message: fmt.Sprintf("what the partner runs is not declared; the entry works both ways with %d of %d candidate servers, not with %s", n0, total, strings.Join(failing, ", "))})
	}
	if best != nil {
		p.Fix = &Fix{Where: "gateway", Cmdlet: lyncpartner.Cmdlet(p.Entry.Identity, p.Entry.Policy, *best), Settings: *best,
			Outcomes: []outcome.Outcome{}, Changes: changes(p.Entry.Policy, *best),
			Works: fmt.Sprintf("%d of %d", bestN, total),
			Why:   fmt.Sprintf("with %s the entry works both ways with %d of %d candidate servers (now %d)", best.Partner(), bestN, total, n0)}
	}
}

// blockers lists everything that stands in the way, not only the first:
// an invalid configuration, a certificate that a negotiation with a
// valid one shows to matter, each direction's failure, and then what
// still fails once the certificates are valid.
func (ev *evaluator) blockers(p *Partner, gw, partner policy.Settings, now [2]outcome.Outcome) []Finding {
	out := []Finding{}
	if !p.Valid {
		out = append(out, Finding{Code: "invalid-configuration", Message: fmt.Sprintf("the document calls %s (%s) an invalid configuration", p.Row, p.Entry.Policy.Partner())})
	}
	score := scoreOf(now)
	if gw.Cert != certs.Valid {
		if o := ev.pair("", withValidCert(gw), partner); better(scoreOf(o), score) {
			out = append(out, Finding{Code: "gateway-certificate", Message: fmt.Sprintf("the gateway's certificate (%s) holds it back: with a valid one, %s", gw.Cert, describePair(o))})
		}
	}
	if partner.Cert != certs.Valid {
		if o := ev.pair("", gw, withValidCert(partner)); better(scoreOf(o), score) {
			out = append(out, Finding{Code: "partner-certificate", Message: fmt.Sprintf("the partner's certificate (%s) holds it back: with a valid one, %s", partner.Cert, describePair(o))})
		}
	}
	seen := map[string]bool{}
	add := func(prefix string, o [2]outcome.Outcome) {
		for i, x := range o {
			if x.OK() || x.Failure == nil {
				continue
			}
			f := failureFinding(Directions[i], x.Failure)
			if seen[f.Code+f.Message] {
				continue
			}
			seen[f.Code+f.Message] = true
			f.Message = prefix + f.Message
			out = append(out, f)
		}
	}
	add("", now)
	if gw.Cert != certs.Valid || partner.Cert != certs.Valid {
		add("once the certificates are valid, still: ", ev.pair("", withValidCert(gw), withValidCert(partner)))
	}
	return out
}

// failureFinding names a failure as a blocker, from its step and
// condition.
func failureFinding(dir Direction, f *outcome.Failure) Finding {
	code := "refused"
	switch {
	case f.Step == outcome.StepTCP:
		code = "unreachable"
	case f.Step == outcome.StepTLSHandshake:
		code = "certificate-refused"
	case f.Step == outcome.StepStream && f.Condition == outcome.NotAuthorized:
		code = "certificate-refused"
	case f.Step == outcome.StepStartTLS:
		code = "tls-mismatch"
	case f.Step == outcome.StepSASL && f.Condition == outcome.NotAuthorized:
		code = "external-refused"
	case f.Step == outcome.StepDialback && f.Condition == outcome.DialbackInvalid:
		code = "dialback-invalid"
	case f.Step == outcome.StepSASL || f.Step == outcome.StepDialback:
		code = "no-common-method"
	case f.Step == outcome.StepDialbackVerify:
		code = "dialback-verify"
	case f.Step == outcome.StepTimeout:
		code = "no-answer"
	}
	return Finding{Code: code, Message: fmt.Sprintf("%s: %s (%s)", dir, f.Message, outcome.Outcome{Failure: f})}
}

func describePair(o [2]outcome.Outcome) string {
	name := func(x outcome.Outcome) string {
		if x.OK() {
			return x.Method.Name()
		}
		return "no authentication (" + x.String() + ")"
	}
	if o[0].OK() && o[1].OK() && o[0].Method == o[1].Method {
		return name(o[0]) + " both ways"
	}
	return fmt.Sprintf("%s when the gateway initiates, %s when the partner does", name(o[0]), name(o[1]))
}

func nonNil(f []outcome.Failure) []outcome.Failure {
	if f == nil {
		return []outcome.Failure{}
	}
	return f
}
