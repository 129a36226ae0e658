package partners

import (
	"fmt"
	"strings"

	"xmppneg/sim/probe"
)

// Probed is what the probe of a partner's server found, as the partner
// report uses it: the settings learned from what the server did (judged
// then exactly as a declared partner's), or, when nothing was reached,
// why not.
type Probed struct {
	Report *probe.Report `json:"-"`
	// Learned is nil when the server was not reached.
	Learned *probe.Learned `json:"learned"`
	// Verdict and Method are what the probe's own negotiation came to;
	// Diagnosis and Findings what it said.
	Verdict   string   `json:"verdict"`
	Method    string   `json:"method"`
	Diagnosis []string `json:"diagnosis"`
	Findings  []string `json:"findings"`
	// DNS is every query and its answer; Attempts every target tried.
	DNS      []string `json:"dns"`
	Attempts []string `json:"attempts"`
}

// LearnFromProbe reads a probe's report for the partner report.
func LearnFromProbe(r *probe.Report) *Probed {
	p := &Probed{Report: r, Learned: r.Learned, Verdict: r.Verdict(), Method: r.Method(),
		Diagnosis: r.Diagnosis, Findings: r.Findings, DNS: []string{}, Attempts: []string{}}
	if res := r.Resolution; res != nil {
		for _, q := range res.Queries {
			p.DNS = append(p.DNS, q.Type+" "+q.Name+" → "+q.Answer)
		}
	}
	for _, t := range r.Targets {
		where := t.Addr
		if where == "" {
			where = fmt.Sprintf("%s:%d", t.Host, t.Port)
		}
		state := "reached"
		if !t.Reachable {
			state = "not reached: " + t.Error
		}
		p.Attempts = append(p.Attempts, fmt.Sprintf("%s (%s): %s", where, t.Via, state))
	}
	if n := r.Negotiation; n != nil {
		for _, a := range n.Attempts {
			p.Attempts = append(p.Attempts, fmt.Sprintf("negotiation at %s (%s): %s", a.Addr, a.Target.Via, a.Result))
		}
	}
	return p
}

// Label says in a few words what the probe found the partner runs.
func (p *Probed) Label() string {
	l := p.Learned
	if l == nil {
		return "not reached"
	}
	s := fmt.Sprintf("%s, cert=%s, closest %s", l.Settings.Policy.Short(), l.Cert, l.Profile)
	if len(l.AsClose) > 0 {
		s += " (or " + strings.Join(l.AsClose, ", ") + ")"
	}
	return s
}

// notes are what the report says of a probed partner besides its
// verdict: what the probe's own negotiation came to, the evidence for
// the closest profile, and what the observations cannot tell.
func (p *Probed) notes() []Finding {
	l := p.Learned
	how := fmt.Sprintf("the harness's own negotiation with it came to %s, the probe's verdict: %s", p.Method, p.Verdict)
	if p.Report != nil && p.Report.Lenient {
		how += " (the harness got through only because the probe is lenient about certificates; the default partner refuses this one)"
	}
	out := []Finding{{Code: "probed", Message: fmt.Sprintf("probed: %s; learned %s, certificate %s (%s); closest profile %s: %s",
		how, l.Settings.Policy.Partner(), l.Cert, l.CertWhy, l.Profile, strings.Join(l.Evidence, "; "))}}
	for _, u := range l.Unknown {
		out = append(out, Finding{Code: "not-known", Message: u})
	}
	for _, f := range p.Findings {
		out = append(out, Finding{Code: "probe-finding", Message: f})
	}
	return out
}

// unreachable says why the partner was not reached: what DNS answered
// and what was tried.
func (p *Probed) unreachable() string {
	why := "nothing answered"
	if len(p.Diagnosis) > 0 {
		why = p.Diagnosis[0]
	}
	s := "the partner's server was not reached: " + why
	if len(p.DNS) > 0 {
		s += "; DNS: " + strings.Join(p.DNS, "; ")
	}
	if len(p.Attempts) > 0 {
		s += "; tried: " + strings.Join(p.Attempts, "; ")
	}
	return s
}
