package probe

import (
	"fmt"
	"strings"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// Learned is what a probe found out about a server as its partners meet
// it: its settings in the Lync words (the TLS, SASL and dialback it
// showed), the state of its certificate as a partner judges it, the TLS
// versions it accepts, and the shipped profile closest to what it did,
// with the evidence for it. What the observations cannot tell is said,
// not guessed.
type Learned struct {
	// Settings are the closest profile's behaviour with everything
	// observed put over it: the triple, the certificate, the TLS
	// versions, direct TLS.
	Settings policy.Settings `json:"-"`
	Spec     string          `json:"settings"`
	Row      string          `json:"row"` // the full matrix's row of the triple
	Cert     certs.State     `json:"cert"`
	// CertWhy says what made the certificate that state.
	CertWhy string `json:"cert_why"`
	// Profile is the shipped profile that did what the server did in
	// the most observations; AsClose are those that did as well.
	Profile  string   `json:"closest_profile"`
	AsClose  []string `json:"as_close"`
	Evidence []string `json:"evidence"`    // what Profile matched
	Against  []string `json:"differences"` // what it did not
	Unknown  []string `json:"unknown"`     // what the observations cannot tell
}

// PartnerView is what one shipped profile, as a partner of the server,
// comes to both ways by the oracle, from the settings learned.
type PartnerView struct {
	Profile    string          `json:"profile"`
	ToServer   outcome.Outcome `json:"to_server"`   // the profile initiates
	FromServer outcome.Outcome `json:"from_server"` // the server initiates
}

// Works reports whether the partner authenticates both ways.
func (v PartnerView) Works() bool { return v.ToServer.OK() && v.FromServer.OK() }

// DefaultPartner is the partner whose verdict decides a probe's: the
// harness's own reference behaviour (profile xmppneg), which checks
// certificates during the handshake, as strict partners do.
const DefaultPartner = "xmppneg"

// observed is what the probe saw the server do, fact by fact; "" is a
// fact not observed.
type observed struct {
	starttls       string // "required", "offered", "not offered", "direct TLS only"
	externalAfter  string // "yes", "no": EXTERNAL offered after TLS
	dialback       string // "yes", "no": dialback offered, before or after TLS
	harnessToIt    *outcome.Outcome
	itToHarness    *outcome.Outcome
	ownStreamReply string // "yes": it opened a stream of its own to the harness
	// What the 2026 generation added to its features, in any offer the
	// harness read ("" when it read none): they tell Prosody 13 and
	// ejabberd 24.12 from their elders, which negotiate alike.
	limits         string // "yes", "no": XEP-0478 limits advertised
	channelBinding string // "yes", "no": XEP-0440 channel binding after TLS
	bidi           string // "none", "true", "wrong-namespace": XEP-0288 offered
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// observe reads the facts out of a report.
func observe(rep *Report) observed {
	var o observed
	direct := false
	for _, t := range rep.Targets {
		if !t.Reachable || t.StartTLS == "timed out" {
			continue // nothing seen there
		}
		if t.DirectTLS {
			direct = direct || len(t.Accepted()) > 0
			continue
		}
		if o.starttls == "" {
			o.starttls = t.StartTLS
			if t.Features != "" {
				o.dialback = yesNo(strings.Contains(t.Features, "dialback"))
			}
		}
	}
	if o.starttls == "" && direct {
		o.starttls = "direct TLS only"
	}
	if n := rep.Negotiation; n != nil {
		for _, off := range n.Offers {
			if strings.Contains(off.Features, "dialback") {
				o.dialback = "yes"
			} else if o.dialback == "" {
				o.dialback = "no"
			}
			if off.TLS && o.externalAfter == "" {
				o.externalAfter = yesNo(strings.Contains(off.Features, "EXTERNAL"))
			}
		}
		if len(n.Offers) > 0 {
			o.limits, o.bidi = "no", "none"
			for _, off := range n.Offers {
				switch {
				case strings.Contains(off.Features, "limits (XEP-0478"):
					o.limits = "yes"
				}
				switch {
				case strings.Contains(off.Features, "bidi (XEP-0288, in "):
					o.bidi = "wrong-namespace"
				case strings.Contains(off.Features, "bidi (XEP-0288)"):
					o.bidi = "true"
				}
				if off.TLS && off.Mechanisms != nil {
					o.channelBinding = yesNo(strings.Contains(off.Features, "channel binding"))
				}
			}
		}
		if len(n.Offers) > 0 || n.Outcome.OK() {
			out := n.Outcome
			if n.AuthenticatedThenFailed() {
				out = outcome.Succeeded(n.Authenticated)
			}
			o.harnessToIt = &out
		}
	}
	for _, in := range rep.Inbound {
		if in.Role == outcome.Receiver.String() && in.Scan == nil {
			out := in.Outcome
			if o.itToHarness == nil || out.OK() {
				o.itToHarness = &out
			}
			o.ownStreamReply = "yes"
		}
	}
	return o
}

// offers is what a server with settings s would show the harness, by
// the rules both the engine and the oracle follow: STARTTLS when it may
// and has a certificate (marked required when its TLS is Required and
// it marks it), EXTERNAL after TLS unless its SASL is NotSupported (the
// harness presents a certificate), dialback when on and not disabled by
// TLS and SASL Required.
func offers(s policy.Settings) (starttls, external, dialback string) {
	hasCert := s.Cert != certs.Missing
	switch {
	case s.TLS == policy.NotSupported || !hasCert:
		starttls = "not offered"
	case s.TLS == policy.Required && s.RequiredMarker == policy.RequiredMarkerSend:
		starttls = "required"
	default:
		starttls = "offered"
	}
	external = yesNo(s.SASL != policy.NotSupported && hasCert && s.TLS != policy.NotSupported)
	dialback = yesNo(s.Dialback && s.DialbackUsable())
	return
}

// learn derives the server's settings from what the probe observed, and
// finds the closest shipped profile. It returns nil when nothing was
// reached.
func learn(rep *Report, harness policy.Settings) *Learned {
	if !rep.reachable() && (rep.Negotiation == nil || len(rep.Negotiation.Offers) == 0) {
		return nil
	}
	o := observe(rep)
	l := &Learned{Evidence: []string{}, Against: []string{}, Unknown: []string{}, AsClose: []string{}}

	var p policy.Policy
	switch o.starttls {
	case "required", "direct TLS only":
		p.TLS = policy.Required
	case "offered":
		p.TLS = policy.Optional
	default:
		p.TLS = policy.NotSupported
	}
	if o.externalAfter == "no" && harness.Cert == certs.Missing {
		// Offered only to a peer that shows a certificate, as most do:
		// not seen.
		o.externalAfter = ""
		l.Unknown = append(l.Unknown, "SASL: the harness showed no certificate, so whether EXTERNAL is offered was not seen; Optional assumed (probe with --cert valid to see it)")
	}
	switch o.externalAfter {
	case "yes":
		p.SASL = policy.Optional
		if p.TLS == policy.Required {
			l.Unknown = append(l.Unknown, "SASL Required or Optional: a server does not say which; Optional assumed")
		}
	case "no":
		p.SASL = policy.NotSupported
		l.Unknown = append(l.Unknown, "SASL: EXTERNAL was not offered to the harness's certificate; a server that offers it only to certificates it accepts (Prosody) looks the same: probe with a certificate it trusts (--pki of its CA)")
	default:
		p.SASL = policy.NotSupported
		if p.TLS != policy.NotSupported {
			p.SASL = policy.Optional
			if harness.Cert != certs.Missing {
				l.Unknown = append(l.Unknown, "SASL: no stream was secured, so whether EXTERNAL is offered was not seen; Optional assumed")
			}
		}
	}
	p.Dialback = o.dialback == "yes"
	if !p.Dialback && p.TLS == policy.Required && p.SASL != policy.NotSupported {
		l.Unknown = append(l.Unknown, "dialback off, or disabled by TLS and SASL both Required (the document's M1): they look the same")
	}

	var chain *certs.Chain
	for _, t := range rep.Targets {
		if t.Chain != nil {
			chain = t.Chain
			break
		}
	}
	l.Cert, l.CertWhy = certState(chain, rep.Domain)
	if chain == nil && p.TLS != policy.NotSupported {
		l.Unknown = append(l.Unknown, "the certificate: STARTTLS was offered but no TLS handshake completed, so none was seen")
	}

	// The closest profile: the one whose behaviour, with the server's
	// certificate, matches the most facts observed.
	type fact struct {
		name, seen string
		want       func(s policy.Settings) string
	}
	facts := []fact{
		{"STARTTLS", o.starttls, func(s policy.Settings) string { st, _, _ := offers(s); return st }},
		{"SASL EXTERNAL offered after TLS", o.externalAfter, func(s policy.Settings) string { _, e, _ := offers(s); return e }},
		{"dialback offered", o.dialback, func(s policy.Settings) string { _, _, d := offers(s); return d }},
		{"XEP-0478 stream limits advertised", o.limits, func(s policy.Settings) string { return yesNo(s.StreamLimits != policy.StreamLimitsNone) }},
		{"XEP-0440 channel binding advertised after TLS", o.channelBinding, func(s policy.Settings) string {
			return yesNo(s.ChannelBinding != policy.ChannelBindingNone)
		}},
		{"XEP-0288 bidi offered", o.bidi, func(s policy.Settings) string {
			return map[policy.Bidi]string{policy.BidiOff: "none", policy.BidiXEP: "true", policy.BidiWrongNamespace: "wrong-namespace"}[s.Bidi]
		}},
	}
	if o.harnessToIt != nil {
		seen := *o.harnessToIt
		facts = append(facts, fact{rep.Harness + " → " + rep.Domain, seen.String(), func(s policy.Settings) string {
			return sameText(policy.Predict(harness, s).Outcome, seen)
		}})
	}
	if o.itToHarness != nil {
		seen := *o.itToHarness
		facts = append(facts, fact{rep.Domain + " → " + rep.Harness, seen.String(), func(s policy.Settings) string {
			return sameText(policy.Predict(s, harness).Outcome, seen)
		}})
	}
	best, bestScore := -1, -1
	profiles := policy.Profiles()
	scores := make([]int, len(profiles))
	for i, pr := range profiles {
		s := pr.Settings
		if s.Cert != certs.Missing || p.TLS != policy.NotSupported {
			s.Cert = l.Cert
		}
		for _, f := range facts {
			if f.seen != "" && f.want(s) == f.seen {
				scores[i]++
			}
		}
		if scores[i] > bestScore {
			best, bestScore = i, scores[i]
		}
	}
	closest := profiles[best]
	l.Profile = closest.Name
	for i, pr := range profiles {
		if i != best && scores[i] == bestScore {
			l.AsClose = append(l.AsClose, pr.Name)
		}
	}
	if len(l.AsClose) > 0 {
		l.Unknown = append(l.Unknown, fmt.Sprintf("which of %s, %s it runs: they do alike in everything observed; %s's behaviour is used",
			closest.Name, strings.Join(l.AsClose, ", "), closest.Name))
	}
	cs := closest.Settings
	cs.Cert = l.Cert
	for _, f := range facts {
		if f.seen == "" {
			continue
		}
		if got := f.want(cs); got == f.seen {
			l.Evidence = append(l.Evidence, fmt.Sprintf("%s: %s", f.name, f.seen))
		} else {
			l.Against = append(l.Against, fmt.Sprintf("%s: %s, where %s would come to %s", f.name, f.seen, closest.Name, got))
		}
	}

	s := closest.Settings
	s.Profile = ""
	s.Secret = ""
	s.Policy = p
	s.Cert = l.Cert
	s.DirectTLS = o.starttls == "direct TLS only"
	for _, t := range rep.Targets {
		if t.DirectTLS && len(t.Accepted()) > 0 {
			s.DirectTLS = true
		}
	}
	if acc := acceptedVersions(rep); len(acc) > 0 {
		// Scanned from 1.3 down: the last is the lowest.
		_ = s.Set("tls_min", acc[len(acc)-1])
		_ = s.Set("tls_max", acc[0])
	}
	l.Settings = s
	l.Spec = s.String()
	if r, ok := policy.Full.Lookup(p); ok {
		l.Row = r.ID
	}
	return l
}

// sameText is seen's text when o is the same outcome (the same method,
// or a failure at the same step with the same condition), else o's.
func sameText(o, seen outcome.Outcome) string {
	if o.Same(seen) {
		return seen.String()
	}
	return o.String()
}

// acceptedVersions is the TLS versions the first target that accepted
// any accepted, "1.3" first.
func acceptedVersions(rep *Report) []string {
	for _, t := range rep.Targets {
		if acc := t.Accepted(); len(acc) > 0 {
			return acc
		}
	}
	return nil
}

// certState is the state of the certificate a partner sees, from the
// chain the probe analysed: the first thing wrong with it, in the order
// a partner checks (chain and trust, dates, name, purposes), or valid.
func certState(c *certs.Chain, domain string) (certs.State, string) {
	switch {
	case c == nil:
		return certs.Missing, "no certificate was seen"
	case !c.Complete:
		return certs.MissingIntermediate, c.Trust
	case c.SelfSigned:
		return certs.SelfSigned, c.Trust
	case !c.Trusted:
		return certs.Untrusted, c.Trust
	case c.Expired:
		return certs.Expired, c.Validity
	case c.NotYetValid:
		return certs.NotYetValid, c.Validity
	case !c.NamesFor:
		for _, n := range c.Names {
			if strings.HasSuffix(strings.ToLower(n), "."+strings.ToLower(domain)) {
				return certs.SRVNameOnly, "it names " + strings.Join(c.Names, ", ") + ", a host of " + domain + ", not the domain"
			}
		}
		return certs.WrongName, "it names " + strings.Join(c.Names, ", ") + ", not " + domain
	case c.Purposes == "serverAuth only":
		return certs.NoClientAuth, "its purposes are serverAuth only"
	case c.Purposes == "clientAuth only":
		return certs.ClientOnly, "its purposes are clientAuth only"
	case c.Purposes == "none":
		return certs.NoEKU, "it lists no purpose (any)"
	case c.DaysLeft < 30:
		return certs.ExpiringSoon, c.Validity
	}
	return certs.Valid, c.Trust + ", " + c.Validity
}

// partnerViews is what every shipped profile comes to with the server,
// both ways, by the oracle.
func partnerViews(server policy.Settings) []PartnerView {
	var out []PartnerView
	for _, pr := range policy.Profiles() {
		out = append(out, PartnerView{Profile: pr.Name,
			ToServer:   policy.Predict(pr.Settings, server).Outcome,
			FromServer: policy.Predict(server, pr.Settings).Outcome})
	}
	return out
}

// lenient reports whether the harness got through only because it goes
// on past an invalid certificate: the default partner fails with the
// server as learned, and works with it once its certificate is valid.
func lenient(rep *Report) bool {
	n := rep.Negotiation
	if n == nil || !n.Outcome.OK() || rep.Learned == nil || rep.Learned.Cert == certs.Valid || rep.Learned.Cert == certs.ExpiringSoon {
		return false
	}
	def := defaultPartner()
	server := rep.Learned.Settings
	if works(def, server) {
		return false
	}
	server.Cert = certs.Valid
	return works(def, server)
}

func works(partner, server policy.Settings) bool {
	return policy.Predict(partner, server).Outcome.OK() && policy.Predict(server, partner).Outcome.OK()
}

func defaultPartner() policy.Settings {
	p, _ := policy.LookupProfile(DefaultPartner)
	return p.Settings
}
