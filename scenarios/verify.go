package scenarios

import (
	"fmt"
	"strings"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// RowCheck is one row of the full matrix compared with what real
// negotiations of its settings against every partner achieved.
type RowCheck struct {
	Row          string            `json:"row"`
	TLS          policy.Level      `json:"tls"`
	SASL         policy.Level      `json:"sasl"`
	Dialback     bool              `json:"dialback"`
	Valid        bool              `json:"valid"`
	Documented   outcome.MethodSet `json:"documented"`
	Observed     outcome.MethodSet `json:"observed"`
	Agree        bool              `json:"agree"`
	Negotiations int               `json:"negotiations"`
	Succeeded    int               `json:"succeeded"`
	Warnings     []policy.Finding  `json:"warnings"`
	Errors       []policy.Finding  `json:"errors"`
	Witnesses    []Witness         `json:"witnesses"`
	// Unwitnessed lists the codes of warnings no negotiation shows.
	Unwitnessed []string `json:"unwitnessed"`
	// Why says how the row disagrees, when it does.
	Why string `json:"why,omitempty"`
}

// Witness is a negotiation that shows a documented warning: a partner
// with which the row fails, and why.
type Witness struct {
	Warning         string          `json:"warning"`
	Partner         string          `json:"partner"`
	PartnerSettings string          `json:"partner_settings"`
	PartnerValid    bool            `json:"partner_valid"`
	RowInitiates    bool            `json:"row_initiates"`
	Failure         outcome.Failure `json:"failure"`
	CaseID          string          `json:"case"`
	negotiation     *Negotiation
}

// Negotiation returns the negotiation behind the witness.
func (w Witness) Negotiation() *Negotiation { return w.negotiation }

// Text is the witness in a sentence, for the row with id row.
func (w Witness) Text(row string) string {
	dir := "row initiates"
	if !w.RowInitiates {
		dir = "partner initiates"
	}
	partner := w.Partner
	if !w.PartnerValid {
		partner += ", itself invalid"
	}
	return fmt.Sprintf("%s [%s]: with partner %s (%s), %s: %s", row, w.Warning, partner, w.PartnerSettings, dir, w.Failure.Explain())
}

// CompareRows checks each row of sw: the union of the methods that
// succeeded against every partner, in both directions, must be the
// documented set; an invalid row must succeed with no partner. Each
// warning of the row gets a witness.
func CompareRows(sw Sweep, ns []*Negotiation) []RowCheck {
	var checks []RowCheck
	for _, id := range sw.Rows {
		row, _ := policy.Full.Row(id)
		v, _ := policy.Validate(row.Policy)
		rc := RowCheck{Row: row.ID, TLS: row.Policy.TLS, SASL: row.Policy.SASL, Dialback: row.Policy.Dialback,
			Valid: v.Valid, Documented: v.Methods, Warnings: v.Warnings, Errors: v.Errors, Witnesses: []Witness{}, Unwitnessed: []string{}}
		var got []outcome.Method
		var failures []*Negotiation
		for _, n := range ns {
			c := n.Case
			if c.Suite != sw.Suite || c.Sweep != sw.Name || c.Row != row.ID || n.Result == nil || n.Cancelled {
				continue
			}
			rc.Negotiations++
			if o := n.Result.Outcome; o.OK() {
				got = append(got, o.Method)
				rc.Succeeded++
			} else {
				failures = append(failures, n)
			}
		}
		rc.Observed = outcome.NewMethodSet(got...)
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
			} else {
				rc.Unwitnessed = append(rc.Unwitnessed, w.Code)
			}
		}
		checks = append(checks, rc)
	}
	return checks
}

// shows says how well a failed negotiation shows a warning: the
// dialback-disabled warning (M1) by a failure at the dialback step, no
// common method being left; the sasl-needs-tls warning by a failure on a
// stream that stayed unencrypted, where SASL could not be used.
func shows(code string, n *Negotiation) bool {
	f := n.Result.Outcome.Failure
	switch code {
	case policy.CodeDialbackDisabled:
		return f != nil && f.Step == outcome.StepDialback && f.Condition == outcome.PolicyViolation
	case policy.CodeSASLNeedsTLS:
		return n.Result.TLS == nil
	}
	return false
}

// witness picks, among the row's failed negotiations, the one that best
// shows warning w: a valid partner before an invalid one, a failure that
// shows what the warning is about, then document order (the row
// initiating first).
func witness(w policy.Finding, failures []*Negotiation) (Witness, bool) {
	var best *Negotiation
	bestScore := -1
	for _, n := range failures {
		partner, _ := partnerRow(n.Case.Partner)
		score := 0
		if partner.Valid {
			score += 2
		}
		if shows(w.Code, n) {
			score++
		}
		if score > bestScore {
			best, bestScore = n, score
		}
	}
	if best == nil {
		return Witness{}, false
	}
	partner, _ := partnerRow(best.Case.Partner)
	return Witness{
		Warning: w.Code, Partner: partner.ID, PartnerSettings: partner.Policy.Short(), PartnerValid: partner.Valid,
		RowInitiates: best.Case.RowInitiates, Failure: *best.Result.Outcome.Failure, CaseID: best.Case.ID, negotiation: best,
	}, true
}

// Evidence is an inconsistency of the document with what the real
// negotiations of the same settings showed.
type Evidence struct {
	policy.Inconsistency
	Observed outcome.MethodSet `json:"observed"`
	Verdict  string            `json:"verdict"`
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
				r, _ := partnerRow(id)
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
