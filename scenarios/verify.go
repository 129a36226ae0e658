package scenarios

import (
	"fmt"
	"strings"

	"xmppneg/policy"
)

// RowCheck is one row of the full matrix compared with what real
// negotiations of its settings against every partner achieved.
type RowCheck struct {
	Row          string           `json:"row"`
	TLS          policy.Level     `json:"tls"`
	SASL         policy.Level     `json:"sasl"`
	Dialback     bool             `json:"dialback"`
	Valid        bool             `json:"valid"`
	Documented   policy.MethodSet `json:"documented"`
	Observed     policy.MethodSet `json:"observed"`
	Agree        bool             `json:"agree"`
	Negotiations int              `json:"negotiations"`
	Succeeded    int              `json:"succeeded"`
	Warnings     []policy.Finding `json:"warnings"`
	Errors       []policy.Finding `json:"errors"`
	Witnesses    []Witness        `json:"witnesses"`
	// Why says how the row disagrees, when it does.
	Why string `json:"why,omitempty"`
}

// Witness is a negotiation that shows a documented warning: a partner
// with which the row fails, and why.
type Witness struct {
	Warning         string `json:"warning"`
	Partner         string `json:"partner"`
	PartnerSettings string `json:"partner_settings"`
	PartnerValid    bool   `json:"partner_valid"`
	RowInitiates    bool   `json:"row_initiates"`
	Failure         string `json:"failure"`
	CaseID          string `json:"case"`
	outcome         *Outcome
}

// Outcome returns the negotiation behind the witness.
func (w Witness) Outcome() *Outcome { return w.outcome }

// CompareRows checks each row of sw: the union of the methods that
// succeeded against every partner, in both directions, must be the
// documented set; an invalid row must succeed with no partner. Each
// warning of the row gets a witness.
func CompareRows(sw Sweep, outcomes []*Outcome) []RowCheck {
	var checks []RowCheck
	for _, id := range sw.Rows {
		row, _ := policy.Full.Row(id)
		v, _ := policy.Validate(row.Policy)
		rc := RowCheck{Row: row.ID, TLS: row.Policy.TLS, SASL: row.Policy.SASL, Dialback: row.Policy.Dialback,
			Valid: v.Valid, Documented: v.Methods, Warnings: v.Warnings, Errors: v.Errors, Witnesses: []Witness{}}
		var got []policy.Method
		var failures []*Outcome
		for _, o := range outcomes {
			c := o.Case
			if c.Suite != sw.Suite || c.Sweep != sw.Name || c.Row != row.ID || o.Result == nil {
				continue
			}
			rc.Negotiations++
			if m, ok := o.Result.Method(); ok {
				got = append(got, m)
				rc.Succeeded++
			} else {
				failures = append(failures, o)
			}
		}
		rc.Observed = policy.NewMethodSet(got...)
		rc.Agree = rc.Observed.Equal(rc.Documented) && rc.Negotiations > 0
		switch {
		case rc.Negotiations == 0:
			rc.Why = "no negotiation of this row was run"
		case !rc.Agree:
			var parts []string
			if extra := rc.Observed.Minus(rc.Documented); len(extra) > 0 {
				parts = append(parts, "observed but not documented: "+extra.Names())
			}
			if missing := rc.Documented.Minus(rc.Observed); len(missing) > 0 {
				parts = append(parts, "documented but never observed: "+missing.Names())
			}
			rc.Why = strings.Join(parts, "; ")
		}
		for _, w := range v.Warnings {
			if wit, ok := witness(w, failures); ok {
				rc.Witnesses = append(rc.Witnesses, wit)
			}
		}
		checks = append(checks, rc)
	}
	return checks
}

// witness picks, among the row's failed negotiations, the one that best
// shows warning w: a valid partner before an invalid one, a failure that
// speaks of what the warning is about, the row initiating, document order.
func witness(w policy.Finding, failures []*Outcome) (Witness, bool) {
	keyword := map[string]string{
		policy.CodeDialbackDisabled: "dialback",
		policy.CodeSASLNeedsTLS:     "TLS",
	}[w.Code]
	best, bestScore := (*Outcome)(nil), -1
	for _, o := range failures {
		partner, _ := policy.Full.Row(o.Case.Partner)
		score := 0
		if partner.Valid {
			score += 4
		}
		if keyword != "" && o.Result.Failure != nil && strings.Contains(o.Result.Failure.Message, keyword) {
			score += 2
		}
		if keyword == "TLS" && o.Result.TLS == nil {
			score++
		}
		if score > bestScore {
			best, bestScore = o, score
		}
	}
	if best == nil {
		return Witness{}, false
	}
	partner, _ := policy.Full.Row(best.Case.Partner)
	return Witness{
		Warning: w.Code, Partner: partner.ID, PartnerSettings: partner.Policy.Short(), PartnerValid: partner.Valid,
		RowInitiates: best.Case.RowInitiates, Failure: best.Result.Failure.String(), CaseID: best.Case.ID, outcome: best,
	}, true
}

// Evidence is an inconsistency of the document with what the real
// negotiations of the same settings showed.
type Evidence struct {
	policy.Inconsistency
	Observed policy.MethodSet `json:"observed"`
	Verdict  string           `json:"verdict"`
}

// Inconsistencies returns the document's inconsistencies, each with what
// the compared rows observed for the same settings.
func Inconsistencies(rows []RowCheck) []Evidence {
	var out []Evidence
	for _, inc := range policy.Inconsistencies() {
		ev := Evidence{Inconsistency: inc}
		for _, rc := range rows {
			if rc.TLS != inc.Policy.TLS || rc.SASL != inc.Policy.SASL || rc.Dialback != inc.Policy.Dialback {
				continue
			}
			ev.Observed = rc.Observed
			var right, wrong []string
			for _, id := range inc.Rows {
				r, ok := policy.Common.Row(id)
				if !ok {
					r, _ = policy.Full.Row(id)
				}
				if r.Methods.Equal(rc.Observed) {
					right = append(right, id)
				} else {
					wrong = append(wrong, id)
				}
			}
			ev.Verdict = fmt.Sprintf("real negotiations of %s achieved %s", inc.Policy.Short(), rc.Observed.Names())
			if len(right) > 0 {
				ev.Verdict += ": " + strings.Join(right, ", ") + " is right"
			}
			if len(wrong) > 0 {
				ev.Verdict += ", " + strings.Join(wrong, ", ") + " is wrong"
			}
		}
		out = append(out, ev)
	}
	return out
}
