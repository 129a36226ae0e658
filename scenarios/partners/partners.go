// Package partners answers, for each entry of a gateway's XMPP partner
// list, the questions its administrator has: will this partner work, in
// both directions, with which method; if not, what blocks it (every
// blocker, not only the first); and what to change, as a
// Set-CsXmppAllowedPartner line that a real negotiation has shown to
// work. Every answer comes from negotiations run through the scenarios
// runner; the documented matrix is only quoted.
//
// Advice is only as good as what was observed: a change is proposed only
// for a failure seen with a partner whose server was declared or probed,
// it never lowers TLS or SASL unless nothing else authenticates (and
// then says so), and for a partner nobody declared or probed the report
// says what is not known and how to learn it.
package partners

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
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
	// Probed are the partners' servers as probes found them, by domain
	// (see LearnFromProbe): a partner that was reached is judged with
	// the settings learned, one that was not is unreachable.
	Probed map[string]*Probed
	// Transcripts keeps the transcript of every negotiation the report
	// shows, for --out and -v.
	Transcripts bool
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
	Works       Status = "works"       // both directions, with the strongest method any gateway setting gets
	Weaker      Status = "weaker"      // both directions, but another gateway setting gets a stronger method
	Fails       Status = "fails"       // at least one direction does not authenticate
	Unknown     Status = "unknown"     // nothing declared or probed: see the candidates
	Unreachable Status = "unreachable" // probed, and not reached
)

// Failing reports whether a verdict fails the list: FAILS, unreachable
// and unknown do (the exit code, JUnit and the JSON summary agree).
func (s Status) Failing() bool { return s == Fails || s == Unknown || s == Unreachable }

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

// Summary counts the verdicts. OK is false when any partner fails, is
// unreachable or unknown: then the exit code is 1 and JUnit counts as
// many failures.
type Summary struct {
	OK           bool `json:"ok"`
	Partners     int  `json:"partners"`
	Works        int  `json:"works"`
	Weaker       int  `json:"weaker"`
	Fails        int  `json:"fails"`
	Unreachable  int  `json:"unreachable"`
	Unknown      int  `json:"unknown"`
	Failing      int  `json:"failing"` // fails + unreachable + unknown
	Fixes        int  `json:"fixes"`
	Negotiations int  `json:"negotiations"` // run, each distinct one once
}

// Partner is one entry's evaluation.
type Partner struct {
	Entry    lyncpartner.Entry `json:"-"`
	Row      string            `json:"row"`
	Valid    bool              `json:"valid"`
	Warnings []Finding         `json:"warnings"`
	// Runs is what the partner was declared to run ("profile
	// prosody-0.12", a spec), what a probe found ("probed: …"), or
	// "unknown".
	Runs string `json:"partner_profile"`
	// Probed is what the probe of the partner's server found, when it
	// was probed.
	Probed       *Probed        `json:"probed,omitempty"`
	Status       Status         `json:"status"`
	Negotiations []*Negotiation `json:"negotiations"`
	// Candidates, for an undeclared partner: how the entry fares with
	// each server it might run, and with how many both ways.
	Candidates         []*CandidateResult `json:"candidates,omitempty"`
	CandidatesBothWays int                `json:"-"`
	Blockers           []Finding          `json:"blockers"`
	// Notes say what is worth knowing and is no blocker: a stronger
	// method another setting gets, what is not known and how to learn
	// it.
	Notes []Finding `json:"notes"`
	Fix   *Fix      `json:"fix"`
}

// Shown lists every negotiation the report shows for p: its own, the
// fix's, the candidates', the blockers'; each has its transcript when
// Options.Transcripts is set.
func (p *Partner) Shown() []*Negotiation {
	out := append([]*Negotiation{}, p.Negotiations...)
	for _, c := range p.Candidates {
		out = append(out, c.Negotiations...)
	}
	for _, f := range append(append([]Finding{}, p.Blockers...), p.Notes...) {
		out = append(out, f.Negotiations...)
	}
	if p.Fix != nil {
		out = append(out, p.Fix.Negotiations...)
	}
	return out
}

// Finding is a warning or a blocker: a stable code and what it means.
type Finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Korean is the source document's own words, for a warning it gives.
	Korean string `json:"-"`
	// Negotiations are those that show it, when it rests on some.
	Negotiations []*Negotiation `json:"-"`
}

// Negotiation is one real negotiation of the partnership.
type Negotiation struct {
	// Label says which of the partner's negotiations it is: its
	// direction, or what it tried ("fix/gateway-initiates",
	// "candidate-prosody-0.12/partner-initiates").
	Label       string            `json:"-"`
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
	Name         string            `json:"name"`
	Outcomes     []outcome.Outcome `json:"outcomes"` // gateway-initiates, partner-initiates
	Negotiations []*Negotiation    `json:"-"`
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
	// Lowers names the parameters the fix lowers (TLS or SASL, from
	// Required or Optional): only when no setting that keeps them
	// authenticates with the partner.
	Lowers       []string       `json:"lowers"`
	Why          string         `json:"why"`
	Negotiations []*Negotiation `json:"-"`
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

// lowers lists the parameters that to lowers, TLS or SASL, from
// Required or from Optional: what weakens the partnership should the
// partner change.
func lowers(from, to policy.Policy) []string {
	out := []string{}
	rank := func(l policy.Level) int { return 2 - int(l) } // Required 2, Optional 1, NotSupported 0
	if rank(to.TLS) < rank(from.TLS) {
		out = append(out, "TlsNegotiation")
	}
	if rank(to.SASL) < rank(from.SASL) {
		out = append(out, "SaslNegotiation")
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
	ev := newEvaluator(opt)
	rep := &Report{Gateway: opt.GatewayDomain + " " + describeGateway(*opt.Gateway), Notes: notes}
	if rep.Notes == nil {
		rep.Notes = []lyncpartner.Note{}
	}
	for _, e := range entries {
		p := &Partner{Entry: e, Warnings: []Finding{}, Blockers: []Finding{}, Notes: []Finding{}, Negotiations: []*Negotiation{}}
		v, err := policy.Validate(e.Policy)
		if err != nil {
			return nil, err
		}
		p.Row, p.Valid = v.Row, v.Valid
		for _, w := range append(v.Warnings, v.Errors...) {
			p.Warnings = append(p.Warnings, Finding{Code: w.Code, Message: w.Message, Korean: w.Korean})
		}
		p.Probed = opt.Probed[strings.ToLower(e.Domain)]
		rep.Partners = append(rep.Partners, p)
	}
	// Phase one: every partnership as it is, and for undeclared
	// partners the entry against every candidate.
	for _, p := range rep.Partners {
		if d, ok := ev.partnerSettings(p); ok {
			p.Runs = d.Label
			ev.wantPair(p.Entry.Domain, ev.gateway(p.Entry.Policy), d.Settings)
			continue
		}
		if p.Probed != nil {
			p.Runs = "probed: not reached"
			continue
		}
		p.Runs = "unknown"
		gw := ev.gateway(p.Entry.Policy)
		if _, done := ev.candidates[ev.settingsID(gw)]; done {
			continue // another partner with these settings asked
		}
		ev.candidates[ev.settingsID(gw)] = candidateResults{}
		for _, c := range ev.candidateSet() {
			ev.wantPair("", gw, c.Settings)
		}
	}
	if err := ev.run(ctx); err != nil {
		return nil, err
	}
	// Phase two: the search for fixes, and what each certificate does,
	// for partners whose server is known.
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
		case Unreachable:
			rep.Summary.Unreachable++
		}
		if p.Status.Failing() {
			rep.Summary.Failing++
		}
		if p.Fix != nil {
			rep.Summary.Fixes++
		}
	}
	rep.Summary.Partners = len(rep.Partners)
	rep.Summary.OK = rep.Summary.Failing == 0
	rep.Summary.Negotiations = len(ev.memo)
	rep.Duration = time.Since(start)
	return rep, nil
}

// OK reports whether every partner works: the exit code is 0 only then.
func (r *Report) OK() bool { return r.Summary.OK }

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
	memo    map[memoKey]outcomeRun
	pending []runKey
	// ids and byText number settings values by their text: keys are
	// looked up several times per partner, and printing settings each
	// time cost more than the rest of a partner's judgement (50,000
	// partners must take seconds).
	ids    map[policy.Settings]int
	byText map[string]int
	// candidates are the candidate results of unknown partners, by the
	// gateway's settings for the entry.
	candidates    map[int]candidateResults
	candidateList []Candidate
}

func newEvaluator(opt Options) *evaluator {
	return &evaluator{opt: opt, memo: map[memoKey]outcomeRun{}, ids: map[policy.Settings]int{}, byText: map[string]int{},
		candidates: map[int]candidateResults{}}
}

// candidateSet is Candidates(), made once.
func (ev *evaluator) candidateSet() []Candidate {
	if ev.candidateList == nil {
		ev.candidateList = Candidates()
	}
	return ev.candidateList
}

type candidateResults struct {
	results  []*CandidateResult
	bothWays int
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

// memoKey is a runKey with each settings value replaced by the number
// of its text: two settings that print the same are one negotiation.
type memoKey struct {
	domain           string
	gateway, partner int
	direction        Direction
}

// settingsID numbers s by its text (secret included), printing each
// distinct value once.
func (ev *evaluator) settingsID(s policy.Settings) int {
	if id, ok := ev.ids[s]; ok {
		return id
	}
	t := s.String() + "|" + strconv.Quote(s.Secret)
	id, ok := ev.byText[t]
	if !ok {
		id = len(ev.byText)
		ev.byText[t] = id
	}
	ev.ids[s] = id
	return id
}

func (ev *evaluator) memoKey(k runKey) memoKey {
	return memoKey{k.domain, ev.settingsID(k.gateway), ev.settingsID(k.partner), k.direction}
}

func (ev *evaluator) key(domain string, gw, partner policy.Settings, dir Direction) runKey {
	return runKey{domain: domain, gateway: gw, partner: partner, direction: dir}
}

// partnerSettings is what the partner's server runs: declared, or
// learned by its probe; ok is false when neither says.
func (ev *evaluator) partnerSettings(p *Partner) (Declared, bool) {
	return ev.declared(p.Entry.Domain)
}

// declared is what the server of domain runs: declared, or learned by
// its probe (Options.Probed); ok is false when neither says.
func (ev *evaluator) declared(domain string) (Declared, bool) {
	if d, ok := ev.opt.Declared[strings.ToLower(domain)]; ok {
		return d, true
	}
	if pr := ev.opt.Probed[strings.ToLower(domain)]; pr != nil && pr.Learned != nil {
		return Declared{Label: "probed: " + pr.Label(), Settings: pr.Learned.Settings}, true
	}
	return Declared{}, false
}

// gateway is the gateway's settings for an entry with policy p.
func (ev *evaluator) gateway(p policy.Policy) policy.Settings {
	s := *ev.opt.Gateway
	s.Policy = p
	return s
}

func (ev *evaluator) want(k runKey) {
	kt := ev.memoKey(k)
	if _, ok := ev.memo[kt]; ok {
		return
	}
	ev.memo[kt] = outcomeRun{} // reserved: filled by run
	ev.pending = append(ev.pending, k)
}

func (ev *evaluator) get(k runKey) outcomeRun {
	r, ok := ev.memo[ev.memoKey(k)]
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
	ns := scenarios.Run(ctx, cases, scenarios.Options{Jobs: ev.opt.Jobs, KeepTranscripts: ev.opt.Transcripts})
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
			if ev.opt.Transcripts {
				r.transcript = scenarios.TranscriptText(n)
			}
		}
		ev.memo[ev.memoKey(k)] = r
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
		Name: fmt.Sprintf("%s %s (gateway %s, partner %s)", partnerDomain, k.direction, k.gateway, k.partner), Source: "partners",
		Expect: scenarios.Expect{Oracle: scenarios.Unchecked}}
	if k.direction == GatewayInitiates {
		c.Initiator, c.Receiver = gw, pt
	} else {
		c.Initiator, c.Receiver = pt, gw
	}
	return c
}

// pair is the outcomes both ways of one configuration.
func (ev *evaluator) pair(domain string, gw, partner policy.Settings) [2]outcome.Outcome {
	return [2]outcome.Outcome{
		ev.get(ev.key(domain, gw, partner, GatewayInitiates)).out,
		ev.get(ev.key(domain, gw, partner, PartnerInitiates)).out,
	}
}

// shown is the two negotiations of one configuration as the report shows
// them, labelled.
func (ev *evaluator) shown(label, domain string, gw, partner policy.Settings) []*Negotiation {
	var out []*Negotiation
	for _, dir := range Directions {
		r := ev.get(ev.key(domain, gw, partner, dir))
		l := string(dir)
		if label != "" {
			l = label + "/" + l
		}
		out = append(out, &Negotiation{Label: l, Direction: dir, Outcome: r.out, Explanation: r.explain,
			Recovered: nonNil(r.recovered), Transcript: r.transcript})
	}
	return out
}

// withValidCert returns s with a valid certificate.
func withValidCert(s policy.Settings) policy.Settings {
	s.Cert = certs.Valid
	return s
}

// wantSearch asks, for a partner whose server is known, for the
// negotiations that find a fix: every gateway setting against the
// partner, and the same with valid certificates where a certificate is
// not. A partner nobody declared or probed gets no search: nothing was
// seen to fail.
func (ev *evaluator) wantSearch(p *Partner) {
	d, known := ev.partnerSettings(p)
	if !known {
		return
	}
	partner := d.Settings
	for _, gp := range policy.All() {
		gw := ev.gateway(gp)
		ev.wantPair("", gw, partner)
		if gw.Cert != certs.Valid {
			ev.wantPair("", withValidCert(gw), partner)
		}
		if partner.Cert != certs.Valid {
			ev.wantPair("", gw, withValidCert(partner))
			ev.wantPair("", withValidCert(gw), withValidCert(partner))
		}
	}
}

func (ev *evaluator) wantPair(domain string, gw, partner policy.Settings) {
	for _, dir := range Directions {
		ev.want(ev.key(domain, gw, partner, dir))
	}
}

// wantPartnerSide asks, for a known partner that no gateway setting
// makes work, how the partner's own 18 settings fare with the entry.
func (ev *evaluator) wantPartnerSide(p *Partner) {
	d, known := ev.partnerSettings(p)
	if !known {
		return
	}
	partner := d.Settings
	if _, ok := ev.bestGateway(p, partner, ev.gateway(p.Entry.Policy).Cert, partner.Cert, false); ok {
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
// with the certificates given. With keep, only settings that lower
// neither TLS nor SASL from Required are tried.
func (ev *evaluator) bestGateway(p *Partner, partner policy.Settings, gwCert, partnerCert certs.State, keep bool) (policy.Policy, bool) {
	partner.Cert = partnerCert
	var best policy.Policy
	var bestScore [2]int
	bestChanges := 4
	for _, gp := range fixable() {
		if keep && len(lowers(p.Entry.Policy, gp)) > 0 {
			continue
		}
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
	d, known := ev.partnerSettings(p)
	switch {
	case !known && p.Probed != nil:
		ev.judgeUnreachable(p)
		return
	case !known:
		ev.judgeUnknown(p)
		return
	}
	partner := d.Settings
	gw := ev.gateway(p.Entry.Policy)
	p.Negotiations = ev.shown("", p.Entry.Domain, gw, partner)
	now := [2]outcome.Outcome{p.Negotiations[0].Outcome, p.Negotiations[1].Outcome}
	score := pairScore(now[0], now[1])
	p.Blockers = ev.blockers(p, gw, partner, now)
	if p.Probed != nil {
		p.Notes = append(p.Notes, p.Probed.notes()...)
	}

	if score[0] > 0 {
		// It works: no fix. Another setting that gets a stronger method
		// without lowering anything is worth knowing.
		p.Status = Works
		if best, ok := ev.bestGateway(p, partner, gw.Cert, partner.Cert, true); ok {
			if o := ev.pairFor(best, partner); better(scoreOf(o), score) {
				p.Status = Weaker
				p.Notes = append(p.Notes, Finding{Code: "stronger-method", Negotiations: ev.shown("stronger", "", ev.gateway(best), partner),
					Message: fmt.Sprintf("%s gets %s (now %s): not proposed as a fix, nothing fails; %s",
						lyncpartner.Cmdlet(p.Entry.Identity, p.Entry.Policy, best), describePair(o), describePair(now), "verified by negotiation")})
			}
		}
		return
	}
	// It fails. The fix keeps TLS and SASL at least where the entry has
	// them, on the gateway's side or by a certificate; only when nothing
	// that keeps them works does it lower them, and says so.
	p.Status = Fails
	lowering := ev.gatewayFix(p, gw, partner, false)
	if keep := ev.gatewayFix(p, gw, partner, true); keep != nil {
		p.Fix = keep
	} else if cert := ev.certificateFix(p, gw, partner, true); cert != nil {
		p.Fix = cert
		if lowering != nil {
			p.Fix.Why += fmt.Sprintf("; keeping the certificates, %s works too (%s) but lowers %s",
				lowering.Cmdlet, describePair([2]outcome.Outcome{lowering.Outcomes[0], lowering.Outcomes[1]}), lowered(p.Entry.Policy, lowering.Settings))
		}
	} else if lowering != nil {
		p.Fix = lowering
	} else if cert := ev.certificateFix(p, gw, partner, false); cert != nil {
		p.Fix = cert
	} else {
		p.Fix = ev.partnerFix(p, gw, partner)
	}
}

// gatewayFix is the Set-CsXmppAllowedPartner change that makes the
// partnership authenticate both ways, with the certificates as they
// are; with keep, one that lowers neither TLS nor SASL from Required.
// nil when none does.
func (ev *evaluator) gatewayFix(p *Partner, gw, partner policy.Settings, keep bool) *Fix {
	best, ok := ev.bestGateway(p, partner, gw.Cert, partner.Cert, keep)
	if !ok {
		return nil
	}
	o := ev.pairFor(best, partner)
	f := &Fix{Where: "gateway", Cmdlet: lyncpartner.Cmdlet(p.Entry.Identity, p.Entry.Policy, best), Settings: best,
		Outcomes: o[:], Changes: changes(p.Entry.Policy, best), Lowers: lowers(p.Entry.Policy, best),
		Why:          fmt.Sprintf("with %s the partnership authenticates with %s", best.Partner(), describePair(o)),
		Negotiations: ev.shown("fix", "", ev.gateway(best), partner)}
	f.Why += lowersWhy(p.Entry.Policy, best, p.Runs)
	return f
}

// lowered says what to lowers of from: "-SaslNegotiation from Required
// to Optional", or "".
func lowered(from, to policy.Policy) string {
	var what []string
	for _, l := range lowers(from, to) {
		a, b := from.TLS, to.TLS
		if l == "SaslNegotiation" {
			a, b = from.SASL, to.SASL
		}
		what = append(what, fmt.Sprintf("-%s from %s to %s", l, a, b))
	}
	return strings.Join(what, " and ")
}

// lowersWhy says why a fix lowers TLS or SASL: nothing that keeps them
// authenticates with the partner.
func lowersWhy(from, to policy.Policy, runs string) string {
	what := lowered(from, to)
	if what == "" {
		return ""
	}
	return fmt.Sprintf("; it lowers %s, because no setting that keeps them authenticates with this partner (%s) both ways: every valid one was tried", what, runs)
}

func (ev *evaluator) pairFor(gp policy.Policy, partner policy.Settings) [2]outcome.Outcome {
	return ev.pair("", ev.gateway(gp), partner)
}

// certificateFix is the certificate to replace (and the gateway setting
// to go with it, if any) when no gateway setting alone helps, shown to
// work by a negotiation; with keep, without lowering TLS or SASL from
// Required. nil when no certificate is invalid, or replacing one does
// not help.
func (ev *evaluator) certificateFix(p *Partner, gw, partner policy.Settings, keep bool) *Fix {
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
		best, ok := ev.bestGateway(p, partner, t.gwCert, t.ptCert, keep)
		if !ok {
			continue
		}
		g := ev.gateway(best)
		g.Cert = t.gwCert
		pt := partner
		pt.Cert = t.ptCert
		o := ev.pair("", g, pt)
		f := &Fix{Where: "certificate", Settings: best, Outcomes: o[:], Changes: changes(p.Entry.Policy, best),
			Lowers: lowers(p.Entry.Policy, best), Negotiations: ev.shown("fix", "", g, pt)}
		f.Why = t.what
		if len(f.Changes) > 0 {
			f.Cmdlet = lyncpartner.Cmdlet(p.Entry.Identity, p.Entry.Policy, best)
			f.Why += ", and set " + best.Partner()
		}
		f.Why += fmt.Sprintf(": then the partnership authenticates with %s", describePair(o)) + lowersWhy(p.Entry.Policy, best, p.Runs)
		return f
	}
	return nil
}

// partnerFix is what the partner's server must change, with the entry as
// it is, when nothing on the gateway's side helps. nil when nothing does.
func (ev *evaluator) partnerFix(p *Partner, gw, partner policy.Settings) *Fix {
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
	if bestScore[0] == 0 {
		return nil
	}
	s := partner
	s.Policy = bestP
	o := ev.pair("", gw, s)
	return &Fix{Where: "partner", Settings: p.Entry.Policy, Outcomes: o[:], Changes: []string{}, Lowers: []string{},
		Negotiations: ev.shown("fix", "", gw, s),
		Why: fmt.Sprintf("no gateway setting works with this partner; the partner's server must negotiate as tls=%s,sasl=%s,dialback=%t (%s): then the partnership authenticates with %s",
			bestP.TLS, bestP.SASL, bestP.Dialback, bestP.Partner(), describePair(o))}
}

// judgeUnknown says what is known of an entry whose partner nobody
// declared or probed: how it fares with every candidate server, and how
// to learn what the partner runs. No change is proposed: nothing was
// seen to fail.
func (ev *evaluator) judgeUnknown(p *Partner) {
	p.Status = Unknown
	gw := ev.gateway(p.Entry.Policy)
	id := ev.settingsID(gw)
	cached := ev.candidates[id]
	if cached.results == nil {
		// Every partner with the same entry settings meets the same
		// candidates: their results are built once and shared (read
		// only), or a list of 50,000 partners would hold millions.
		for _, c := range ev.candidateSet() {
			o := ev.pair("", gw, c.Settings)
			cr := &CandidateResult{Name: c.Name, Outcomes: o[:], Negotiations: ev.shown("candidate-"+c.Name, "", gw, c.Settings)}
			cached.results = append(cached.results, cr)
			if cr.BothWays() {
				cached.bothWays++
			}
		}
		ev.candidates[id] = cached
	}
	p.Candidates = cached.results[:len(cached.results):len(cached.results)]
	p.CandidatesBothWays = cached.bothWays
	p.Blockers = append(p.Blockers, Finding{Code: "unknown-partner",
		Message: fmt.Sprintf("what %s runs is neither declared nor probed, so nothing was seen to fail and no change is proposed; the entry works both ways with %d of %d candidate servers. "+
			"Learn it: xmppneg partners FILE --probe (reaches the partner's server through DNS), or declare it: --partner %s=PROFILE|SPEC or --profiles FILE",
			p.Entry.Domain, p.CandidatesBothWays, len(p.Candidates), strings.ToLower(p.Entry.Domain))})
}

// judgeUnreachable is the verdict on a partner whose probe reached
// nothing: the DNS answers and the attempts say why.
func (ev *evaluator) judgeUnreachable(p *Partner) {
	p.Status = Unreachable
	p.Blockers = append(p.Blockers, Finding{Code: "unreachable", Message: p.Probed.unreachable()})
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
			out = append(out, Finding{Code: "gateway-certificate", Negotiations: ev.shown("valid-gateway-certificate", "", withValidCert(gw), partner),
				Message: fmt.Sprintf("the gateway's certificate (%s) holds it back: with a valid one, %s", gw.Cert, describePair(o))})
		}
	}
	if partner.Cert != certs.Valid {
		if o := ev.pair("", gw, withValidCert(partner)); better(scoreOf(o), score) {
			out = append(out, Finding{Code: "partner-certificate", Negotiations: ev.shown("valid-partner-certificate", "", gw, withValidCert(partner)),
				Message: fmt.Sprintf("the partner's certificate (%s) holds it back: with a valid one, %s", partner.Cert, describePair(o))})
		}
	}
	seen := map[string]bool{}
	add := func(prefix string, o [2]outcome.Outcome, shown []*Negotiation) {
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
			if shown != nil {
				f.Negotiations = shown[i : i+1]
			}
			out = append(out, f)
		}
	}
	add("", now, nil)
	if gw.Cert != certs.Valid || partner.Cert != certs.Valid {
		add("once the certificates are valid, still: ", ev.pair("", withValidCert(gw), withValidCert(partner)),
			ev.shown("valid-certificates", "", withValidCert(gw), withValidCert(partner)))
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
