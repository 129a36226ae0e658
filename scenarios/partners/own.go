package partners

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/policy/printable"
	"xmppneg/policy/report"
	"xmppneg/sim"
)

// Own is the operator's own server, read from its configuration file
// (partners --gateway config=FILE#HOST): its settings replace a Lync
// entry's, and a fix is a line of that file to change.
type Own struct {
	Label  string // what the operator gave: "prosody.cfg.lua#example.org"
	Domain string
	// Settings are its settings toward a partner domain.
	Settings func(partner string) policy.Settings
	// Changes are the one-line edits of its file a fix may propose.
	Changes []OwnChange
}

// OwnChange is one edit of the operator's file.
type OwnChange struct {
	Line     string // where and what: "prosody.cfg.lua:110: s2s_secure_auth = false"
	Knobs    string // what it changes, in the launcher's words
	Settings func(partner string) policy.Settings
}

// OwnReport is the evaluation of the partners of one's own server.
type OwnReport struct {
	Gateway  string        `json:"server"`
	Partners []*OwnPartner `json:"partners"`
	Summary  Summary       `json:"summary"`
	Duration time.Duration `json:"-"`
}

// OwnPartner is one partner's verdict.
type OwnPartner struct {
	Domain       string         `json:"domain"`
	Runs         string         `json:"partner_profile"`
	Status       Status         `json:"status"`
	Negotiations []*Negotiation `json:"negotiations"`
	// Candidates, for an undeclared partner: with how many of the
	// candidate servers both directions authenticate.
	Candidates string    `json:"candidates,omitempty"`
	Blockers   []Finding `json:"blockers"`
	// Notes say what is worth knowing and is no blocker: a stronger
	// method a line of the file gets, what a probe learned.
	Notes []Finding `json:"notes"`
	Fix   *OwnFix   `json:"fix"`
}

// OwnFix is a change shown by negotiation to make the partnership work,
// or work better.
type OwnFix struct {
	// Where is "config" (Line says what to change), "certificate" or
	// "partner".
	Where    string            `json:"where"`
	Line     string            `json:"line,omitempty"`
	Knobs    string            `json:"knobs,omitempty"`
	Outcomes []outcome.Outcome `json:"-"`
	Works    string            `json:"works,omitempty"`
	Why      string            `json:"why"`
}

// EvaluateOwn says, for each partner domain, how one's own server as its
// file configures it fares, what blocks it, and the line of the file to
// change where the file is the blocker, each answer from negotiations.
func EvaluateOwn(ctx context.Context, domains []string, own Own, opt Options) (*OwnReport, error) {
	start := time.Now()
	if opt.Timeout <= 0 {
		opt.Timeout = sim.DefaultTimeout
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 4 * runtime.NumCPU()
	}
	opt.GatewayDomain = own.Domain
	ev := newEvaluator(opt)
	rep := &OwnReport{Gateway: own.Domain + " (" + own.Label + ")"}
	type subject struct {
		p        *OwnPartner
		partner  []Candidate // the declared one, or every candidate
		declared bool
	}
	var subs []subject
	for _, d := range domains {
		s := subject{p: &OwnPartner{Domain: d, Negotiations: []*Negotiation{}, Blockers: []Finding{}, Notes: []Finding{}}}
		pr := opt.Probed[strings.ToLower(d)]
		if dec, ok := ev.declared(d); ok {
			s.p.Runs, s.declared = dec.Label, true
			s.partner = []Candidate{{Name: dec.Label, Settings: dec.Settings}}
			if pr != nil && pr.Learned != nil {
				s.p.Notes = append(s.p.Notes, pr.notes()...)
			}
		} else if pr != nil {
			s.p.Runs = "probed: not reached"
		} else {
			s.p.Runs = "unknown"
			s.partner = Candidates()
		}
		subs = append(subs, s)
	}
	gwFor := func(domain string, c *OwnChange, valid bool) policy.Settings {
		s := own.Settings(domain)
		if c != nil {
			s = c.Settings(domain)
		}
		if valid {
			s.Cert = certs.Valid
		}
		return s
	}
	// Every negotiation at once: as it is, with each change, and with
	// valid certificates on either side.
	for _, s := range subs {
		for _, c := range s.partner {
			domain := ""
			if s.declared {
				domain = s.p.Domain
			}
			changes := append([]*OwnChange{nil}, ptrs(own.Changes)...)
			for _, ch := range changes {
				ev.wantPair(domain, gwFor(s.p.Domain, ch, false), c.Settings)
			}
			if s.declared {
				ev.wantPair(domain, gwFor(s.p.Domain, nil, true), c.Settings)
				ev.wantPair(domain, gwFor(s.p.Domain, nil, false), withValidCert(c.Settings))
			}
		}
	}
	if err := ev.run(ctx); err != nil {
		return nil, err
	}
	for _, s := range subs {
		p := s.p
		if !s.declared && len(s.partner) == 0 {
			// Probed, and not reached.
			p.Status = Unreachable
			p.Blockers = append(p.Blockers, Finding{Code: "unreachable", Message: opt.Probed[strings.ToLower(p.Domain)].unreachable()})
			rep.Partners = append(rep.Partners, p)
			rep.Summary.Unreachable++
			continue
		}
		if !s.declared {
			// Nobody declared or probed it: nothing was seen to fail, and
			// no line of the file is proposed on a guess.
			count := 0
			for _, c := range s.partner {
				if o := ev.pair("", gwFor(p.Domain, nil, false), c.Settings); o[0].OK() && o[1].OK() {
					count++
				}
			}
			p.Status = Unknown
			p.Candidates = fmt.Sprintf("%d of %d", count, len(s.partner))
			p.Blockers = append(p.Blockers, Finding{Code: "unknown-partner",
				Message: fmt.Sprintf("what %s runs is neither declared nor probed, so nothing was seen to fail and no change is proposed; your server works both ways with %d of %d candidate servers. "+
					"Learn it: xmppneg partners FILE --probe, or declare it: --partner %s=PROFILE|SPEC or --profiles FILE", p.Domain, count, len(s.partner), strings.ToLower(p.Domain))})
			rep.Partners = append(rep.Partners, p)
			rep.Summary.Unknown++
			continue
		}
		partner := s.partner[0].Settings
		now := ev.pair(p.Domain, gwFor(p.Domain, nil, false), partner)
		for i, dir := range Directions {
			r := ev.get(ev.key(p.Domain, gwFor(p.Domain, nil, false), partner, dir))
			p.Negotiations = append(p.Negotiations, &Negotiation{Direction: dir, Outcome: now[i], Explanation: r.explain,
				Recovered: nonNil(r.recovered), Transcript: r.transcript})
		}
		score := scoreOf(now)
		gw := gwFor(p.Domain, nil, false)
		if gw.Cert != certs.Valid {
			if o := ev.pair(p.Domain, gwFor(p.Domain, nil, true), partner); better(scoreOf(o), score) {
				p.Blockers = append(p.Blockers, Finding{Code: "own-certificate", Message: fmt.Sprintf("your certificate (%s) holds it back: with a valid one, %s", gw.Cert, describePair(o))})
			}
		}
		if partner.Cert != certs.Valid {
			if o := ev.pair(p.Domain, gw, withValidCert(partner)); better(scoreOf(o), score) {
				p.Blockers = append(p.Blockers, Finding{Code: "partner-certificate", Message: fmt.Sprintf("the partner's certificate (%s) holds it back: with a valid one, %s", partner.Cert, describePair(o))})
			}
		}
		for i, x := range now {
			if !x.OK() && x.Failure != nil {
				f := failureFinding(Directions[i], x.Failure)
				f.Message = strings.NewReplacer("gateway-initiates", "you initiate", "partner-initiates", "the partner initiates").Replace(f.Message)
				p.Blockers = append(p.Blockers, f)
			}
		}
		// The line that gets the strongest methods, among those that
		// lower neither TLS nor SASL; only when none works, one that does,
		// saying so.
		pick := func(keep bool) int {
			best, bestScore := -1, score
			for i := range own.Changes {
				if keep && len(lowers(gw.Policy, gwFor(p.Domain, &own.Changes[i], false).Policy)) > 0 {
					continue
				}
				o := ev.pair(p.Domain, gwFor(p.Domain, &own.Changes[i], false), partner)
				if sc := scoreOf(o); better(sc, bestScore) {
					best, bestScore = i, sc
				}
			}
			return best
		}
		best := pick(true)
		if best >= 0 && score[0] > 0 {
			// It works: a line that gets a stronger method is a note, not
			// a fix.
			ch := own.Changes[best]
			o := ev.pair(p.Domain, gwFor(p.Domain, &ch, false), partner)
			p.Notes = append(p.Notes, Finding{Code: "stronger-method", Message: fmt.Sprintf("%s gets %s (now %s): not proposed as a fix, nothing fails; verified by negotiation",
				ch.Line, describeOwn(o), describeOwn(now))})
			best = -1
		}
		configFix := func(i int) *OwnFix {
			ch := own.Changes[i]
			o := ev.pair(p.Domain, gwFor(p.Domain, &ch, false), partner)
			f := &OwnFix{Where: "config", Line: ch.Line, Knobs: ch.Knobs, Outcomes: o[:],
				Why: fmt.Sprintf("with this line the partnership authenticates with %s (verified by negotiation)", describeOwn(o))}
			if l := lowered(gw.Policy, gwFor(p.Domain, &ch, false).Policy); l != "" {
				f.Why += fmt.Sprintf("; it lowers %s, because no line that keeps them, and no certificate, makes this partner (%s) authenticate", l, p.Runs)
			}
			return f
		}
		if score[0] == 0 {
			// A line that keeps TLS and SASL, else a certificate, and
			// only then a line that lowers them.
			if best >= 0 {
				p.Fix = configFix(best)
			}
			if p.Fix == nil && gw.Cert != certs.Valid {
				if o := ev.pair(p.Domain, gwFor(p.Domain, nil, true), partner); o[0].OK() && o[1].OK() {
					p.Fix = &OwnFix{Where: "certificate", Outcomes: o[:], Why: fmt.Sprintf("replace your certificate (%s) with a valid one: then %s", gw.Cert, describeOwn(o))}
				}
			}
			if p.Fix == nil && partner.Cert != certs.Valid {
				if o := ev.pair(p.Domain, gw, withValidCert(partner)); o[0].OK() && o[1].OK() {
					p.Fix = &OwnFix{Where: "certificate", Outcomes: o[:], Why: fmt.Sprintf("the partner must replace its certificate (%s) with one you trust, for its domain: then %s", partner.Cert, describeOwn(o))}
				}
			}
			if p.Fix == nil {
				if i := pick(false); i >= 0 {
					p.Fix = configFix(i)
				}
			}
		}
		switch {
		case score[0] == 0:
			p.Status = Fails
			rep.Summary.Fails++
		case len(p.Notes) > 0 && p.Notes[len(p.Notes)-1].Code == "stronger-method":
			p.Status = Weaker
			rep.Summary.Weaker++
		default:
			p.Status = Works
			rep.Summary.Works++
		}
		rep.Partners = append(rep.Partners, p)
	}
	for _, p := range rep.Partners {
		if p.Fix != nil {
			rep.Summary.Fixes++
		}
		if p.Status.Failing() {
			rep.Summary.Failing++
		}
	}
	rep.Summary.OK = rep.Summary.Failing == 0
	rep.Summary.Partners = len(rep.Partners)
	rep.Summary.Negotiations = len(ev.memo)
	rep.Duration = time.Since(start)
	return rep, nil
}

func ptrs(cs []OwnChange) []*OwnChange {
	out := make([]*OwnChange, len(cs))
	for i := range cs {
		out[i] = &cs[i]
	}
	return out
}

// describeOwn is describePair in the operator's words.
func describeOwn(o [2]outcome.Outcome) string {
	return strings.NewReplacer("when the gateway initiates", "when you initiate").Replace(describePair(o))
}

// MarshalJSON writes the fix with its outcome per direction.
func (f *OwnFix) MarshalJSON() ([]byte, error) {
	type plain OwnFix
	var out map[string]string
	if len(f.Outcomes) == 2 {
		out = map[string]string{string(GatewayInitiates): f.Outcomes[0].String(), string(PartnerInitiates): f.Outcomes[1].String()}
	}
	return json.Marshal(struct {
		*plain
		Outcome map[string]string `json:"outcome,omitempty"`
	}{(*plain)(f), out})
}

// WriteOwnJSON writes the report as one JSON document.
func WriteOwnJSON(w io.Writer, r *OwnReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteOwnText writes the table a person reads, then what each partner
// that needs something needs.
func WriteOwnText(w io.Writer, r *OwnReport, st Style) {
	fmt.Fprintf(w, "XMPP partners of %s\n\n", printable.String(r.Gateway))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "partner\truns\tverdict\tyou initiate\tpartner initiates\tfix")
	for _, p := range r.Partners {
		verdict := st.paint(verdictColor[p.Status], string(p.Status))
		if p.Status == Fails {
			verdict = st.paint("red", "FAILS")
		}
		if p.Status == Unknown {
			verdict = st.paint("yellow", p.Candidates+" candidates")
		}
		gwi, pi := "", ""
		if len(p.Negotiations) == 2 {
			gwi, pi = ownOutcome(p.Negotiations[0].Outcome), ownOutcome(p.Negotiations[1].Outcome)
		}
		fix := "—"
		if p.Fix != nil {
			fix = "(" + p.Fix.Where + ")"
			if p.Fix.Line != "" {
				fix = p.Fix.Line
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable.String(p.Domain), printable.String(p.Runs), verdict, gwi, pi, fix)
	}
	tw.Flush()
	for _, p := range r.Partners {
		if p.Status == Works && !st.Verbose {
			continue
		}
		fmt.Fprintf(w, "\n%s (runs %s): %s\n", printable.String(p.Domain), printable.String(p.Runs), p.Status)
		for _, n := range p.Negotiations {
			fmt.Fprintf(w, "  %s: %s\n", map[Direction]string{GatewayInitiates: "you initiate", PartnerInitiates: "the partner initiates"}[n.Direction], printable.String(n.Explanation))
		}
		if len(p.Blockers) > 0 {
			fmt.Fprintln(w, "  blockers:")
			for _, b := range p.Blockers {
				fmt.Fprintf(w, "    [%s] %s\n", b.Code, printable.String(b.Message))
			}
		}
		if len(p.Notes) > 0 {
			fmt.Fprintln(w, "  notes:")
			for _, b := range p.Notes {
				fmt.Fprintf(w, "    [%s] %s\n", b.Code, printable.String(b.Message))
			}
		}
		if p.Fix == nil && p.Status == Fails {
			fmt.Fprintln(w, "  no one-line change of your file makes it work (each was negotiated); see the blockers")
		}
		if f := p.Fix; f != nil {
			if f.Line != "" {
				fmt.Fprintf(w, "  fix (%s): %s\n    %s (%s)\n", f.Where, f.Line, f.Why, f.Knobs)
			} else {
				fmt.Fprintf(w, "  fix (%s): %s\n", f.Where, f.Why)
			}
		}
	}
	s := r.Summary
	fmt.Fprintf(w, "\nSummary: %d works, %d weaker, %d fails, %d unreachable, %d unknown; %d fixes; %d negotiations in %.1f s\n",
		s.Works, s.Weaker, s.Fails, s.Unreachable, s.Unknown, s.Fixes, s.Negotiations, r.Duration.Seconds())
}

func ownOutcome(o outcome.Outcome) string {
	if o.OK() {
		return o.Method.Name()
	}
	if o.Failure != nil {
		return "failed at " + o.Failure.Step.String()
	}
	return "failed"
}

// WriteOwnJUnit writes the report as JUnit XML (its Cases).
func WriteOwnJUnit(w io.Writer, r *OwnReport) error { return report.WriteJUnit(w, r.Cases()) }

// Cases is one case per partner, a failure for each whose verdict fails
// the list, as the exit code and the summary count them; its output is
// what each direction came to.
func (r *OwnReport) Cases() report.Cases {
	s := report.Suite{Name: "partners " + r.Gateway}
	for _, p := range r.Partners {
		c := report.Case{Class: "partners", Name: p.Domain}
		var out []string
		for _, n := range p.Negotiations {
			out = append(out, string(n.Direction)+": "+n.Explanation)
		}
		c.Output = strings.Join(out, "\n")
		if p.Status.Failing() {
			var text []string
			for _, b := range p.Blockers {
				text = append(text, "["+b.Code+"] "+b.Message)
			}
			if p.Fix != nil {
				text = append(text, "fix: "+strings.TrimSpace(p.Fix.Line+" "+p.Fix.Why))
			}
			msg := string(p.Status)
			if len(p.Negotiations) == 2 {
				msg += fmt.Sprintf(": you initiate %s; the partner initiates %s", p.Negotiations[0].Outcome, p.Negotiations[1].Outcome)
			}
			c.Status, c.Message, c.Type, c.Text = report.Failed, msg, string(p.Status), strings.Join(text, "\n")
		}
		s.Cases = append(s.Cases, c)
	}
	return report.Cases{Suites: []report.Suite{s}, Elapsed: r.Duration, Single: true}
}
