// Package rollout checks a change before it is rolled out: two versions
// of one server's configuration (or of a Lync gateway's partner list)
// meet the same partners in both directions, every negotiation runs for
// real with each version, and the report lists every negotiation whose
// outcome changes — the method, or where and how it fails — marking the
// regressions: something that authenticated and no longer does, or does
// with a weaker method.
package rollout

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/scenarios"
	"xmppneg/sim"
)

// Side is one version of one of ours: a host of a configuration file,
// or an entry of a partner list.
type Side struct {
	// Label says what it is, in the operator's words: a spec, or the
	// cmdlet settings of an entry.
	Label string
	// Settings are its settings toward a partner domain (Prosody's
	// s2s_insecure_domains make them depend on it).
	Settings func(partner string) policy.Settings
}

// Subject is one of ours, before and after; a nil side is one the
// version does not have (a host added or removed).
type Subject struct {
	Name string
	// Domain is ours' XMPP domain in the negotiations (default: Name
	// when it is a domain, else Options.OurDomain).
	Domain        string
	Before, After *Side
	Partners      []Partner
}

// Partner is a server ours negotiates with.
type Partner struct {
	Name     string // a profile name, a declared label
	Domain   string
	Settings policy.Settings
}

// Direction says which end opens the connection.
type Direction string

// The two directions.
const (
	OursInitiates    Direction = "ours-initiates"
	PartnerInitiates Direction = "partner-initiates"
)

// Kind classifies how a negotiation changed.
type Kind string

// The kinds of change.
const (
	Unchanged   Kind = "unchanged"
	Regression  Kind = "regression"  // it authenticated and no longer does, or with a weaker method
	Improvement Kind = "improvement" // it authenticates now, or with a stronger method
	Changed     Kind = "changed"     // it fails both times, differently
)

// Result is one negotiation, before and after.
type Result struct {
	Subject   string          `json:"subject"`
	Partner   string          `json:"partner"`
	Domain    string          `json:"partner_domain"`
	Direction Direction       `json:"direction"`
	Before    outcome.Outcome `json:"-"`
	After     outcome.Outcome `json:"-"`
	// BeforeWhy and AfterWhy explain each outcome; empty for a side the
	// version does not have.
	BeforeWhy string `json:"before_explanation"`
	AfterWhy  string `json:"after_explanation"`
	Kind      Kind   `json:"change"`
}

// Report is the comparison.
type Report struct {
	Before, After string // what was compared
	Subjects      []SubjectReport
	Results       []*Result
	Summary       Summary
	Duration      time.Duration
}

// SubjectReport is one of ours, its settings before and after.
type SubjectReport struct {
	Name   string `json:"name"`
	Before string `json:"before"` // "" when absent
	After  string `json:"after"`
}

// Summary counts the negotiations.
type Summary struct {
	Negotiations int `json:"negotiations"`
	Changed      int `json:"changed"`
	Regressions  int `json:"regressions"`
	Improvements int `json:"improvements"`
}

// Options bound the run.
type Options struct {
	Timeout time.Duration
	Jobs    int
	// OurDomain names ours when a subject's name is not a domain.
	OurDomain string
}

// strength ranks a method: SASL over TLS > TLS Dialback > TCP Dialback >
// none.
func strength(o outcome.Outcome) int {
	if !o.OK() {
		return 0
	}
	return len(outcome.Methods) + 1 - int(o.Method)
}

// Classify says how after differs from before.
func Classify(before, after outcome.Outcome) Kind {
	sb, sa := strength(before), strength(after)
	switch {
	case before.String() == after.String():
		return Unchanged
	case sa < sb:
		return Regression
	case sa > sb:
		return Improvement
	}
	return Changed
}

// absent is the outcome for a side that does not exist.
var absent = outcome.Outcome{Failure: &outcome.Failure{Message: "not in this version"}}

// Compare runs every negotiation of every subject with each version.
func Compare(ctx context.Context, subjects []Subject, opt Options) (*Report, error) {
	start := time.Now()
	if opt.Timeout <= 0 {
		opt.Timeout = sim.DefaultTimeout
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 4 * runtime.NumCPU()
	}
	if opt.OurDomain == "" {
		opt.OurDomain = "ours.test"
	}
	type key struct{ ours, partner, dir, domain, pdomain string }
	memo := map[key]int{}
	var cases []*scenarios.Case
	want := func(ourDomain string, ours policy.Settings, p Partner, dir Direction) int {
		k := key{ours.String() + "|" + ours.Secret, p.Settings.String() + "|" + p.Settings.Secret, string(dir), ourDomain, p.Domain}
		if i, ok := memo[k]; ok {
			return i
		}
		o := scenarios.Endpoint{Domain: ourDomain, Settings: ours, Timeout: opt.Timeout}
		pt := scenarios.Endpoint{Domain: p.Domain, Settings: p.Settings, Timeout: 2 * opt.Timeout}
		c := &scenarios.Case{ID: fmt.Sprintf("diff/%d", len(cases)), Suite: "diff", Name: string(dir), Source: "diff",
			Expect: scenarios.Expect{Oracle: scenarios.Unchecked}}
		if dir == OursInitiates {
			c.Initiator, c.Receiver = o, pt
		} else {
			c.Initiator, c.Receiver = pt, o
		}
		memo[k] = len(cases)
		cases = append(cases, c)
		return len(cases) - 1
	}
	type pending struct {
		r             *Result
		before, after int // case index, -1 when absent
	}
	var rows []pending
	rep := &Report{}
	for _, s := range subjects {
		sr := SubjectReport{Name: s.Name}
		if s.Before != nil {
			sr.Before = s.Before.Label
		}
		if s.After != nil {
			sr.After = s.After.Label
		}
		rep.Subjects = append(rep.Subjects, sr)
		domain := s.Domain
		if domain == "" {
			domain = s.Name
		}
		if sim.CheckDomain(domain) != nil {
			domain = opt.OurDomain
		}
		for _, p := range s.Partners {
			for _, dir := range []Direction{OursInitiates, PartnerInitiates} {
				row := pending{r: &Result{Subject: s.Name, Partner: p.Name, Domain: p.Domain, Direction: dir}, before: -1, after: -1}
				if s.Before != nil {
					row.before = want(domain, s.Before.Settings(p.Domain), p, dir)
				}
				if s.After != nil {
					row.after = want(domain, s.After.Settings(p.Domain), p, dir)
				}
				rows = append(rows, row)
			}
		}
	}
	ns := scenarios.Run(ctx, cases, scenarios.Options{Jobs: opt.Jobs})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	get := func(i int) (outcome.Outcome, string) {
		if i < 0 {
			return absent, "not in this version"
		}
		n := ns[i]
		if n.Result == nil {
			return n.Observed(), n.Why
		}
		return n.Result.Outcome, n.Result.Explain()
	}
	for _, row := range rows {
		r := row.r
		r.Before, r.BeforeWhy = get(row.before)
		r.After, r.AfterWhy = get(row.after)
		r.Kind = Classify(r.Before, r.After)
		rep.Results = append(rep.Results, r)
		rep.Summary.Negotiations++
		switch r.Kind {
		case Regression:
			rep.Summary.Regressions++
		case Improvement:
			rep.Summary.Improvements++
		}
		if r.Kind != Unchanged {
			rep.Summary.Changed++
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// Fixed is a side whose settings do not depend on the partner.
func Fixed(label string, s policy.Settings) *Side {
	return &Side{Label: label, Settings: func(string) policy.Settings { return s }}
}
