// Package probe examines a live s2s server as its federation partners
// meet it: where DNS says it is (every SRV target, direct TLS or
// STARTTLS), which TLS versions each target accepts, the certificate
// chain it presents (complete, trusted, naming the XMPP domain, days to
// expiry, purposes), what it offers before and after TLS, which method a
// real negotiation gets, and what the server did on the connections it
// opened back to the harness (its dialback verification, its own stream).
// The diagnosis is built from those observations only.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/policy/printable"
	"xmppneg/sim"
	"xmppneg/sim/resolve"
)

// Env is what probes share: the harness endpoint that negotiates (and
// answers as authoritative server), the network it uses, and where
// servers' connections back to it are collected.
type Env struct {
	Harness  *sim.Endpoint
	Net      *sim.Network
	Resolver *resolve.Resolver // nil: every domain must be given an address
	PKI      *certs.PKI
	System   *x509.CertPool // the system's roots, when available
	Timeout  time.Duration
	// Given names the options the user set ("--pki", "--dns-listen"...):
	// a diagnosis never advises one of them.
	Given map[string]bool
	// ScanVersions tries one handshake per TLS version at every target.
	ScanVersions bool

	mu      sync.Mutex
	inbound []*sim.Result
}

// NewEnv sets up the collection of inbound connections on harness.
func NewEnv(harness *sim.Endpoint, n *sim.Network) *Env {
	env := &Env{Harness: harness, Net: n, Timeout: sim.DefaultTimeout, ScanVersions: true, Given: map[string]bool{}}
	harness.OnInbound(func(r *sim.Result) {
		env.mu.Lock()
		defer env.mu.Unlock()
		env.inbound = append(env.inbound, r)
	})
	return env
}

// takeInbound returns, and forgets, the connections domain opened.
func (env *Env) takeInbound(domain string) []*sim.Result {
	env.mu.Lock()
	defer env.mu.Unlock()
	var mine, rest []*sim.Result
	for _, r := range env.inbound {
		if strings.EqualFold(r.Initiator, domain) {
			mine = append(mine, r)
		} else {
			rest = append(rest, r)
		}
	}
	env.inbound = rest
	return mine
}

// Report is everything one probe found.
type Report struct {
	Domain      string          `json:"domain"`
	Harness     string          `json:"harness"`
	Resolution  *resolve.Result `json:"resolution"`
	Targets     []*Target       `json:"targets"`
	Negotiation *sim.Result     `json:"negotiation"`
	// Inbound are the connections the server opened back to the harness
	// during the probe: its verify connection, its own stream.
	Inbound []*sim.Result `json:"inbound"`
	// Reply is, when the harness authenticated and what it sent then
	// went unanswered, what became of the server's reply: a finding of
	// its own, the authentication being kept in Negotiation.
	Reply string `json:"reply,omitempty"`
	// Learned is the server's settings as derived from what was
	// observed, nil when nothing was reached; Partners what each shipped
	// profile comes to with it, by the oracle.
	Learned  *Learned      `json:"learned"`
	Partners []PartnerView `json:"partners"`
	// Lenient is set when the harness authenticated only because it
	// goes on past an invalid certificate (strict=false): the default
	// partner refuses it.
	Lenient   bool          `json:"lenient"`
	Diagnosis []string      `json:"diagnosis"`
	Findings  []string      `json:"findings"`
	Duration  time.Duration `json:"-"`
}

// Target is what one place the server listens at showed.
type Target struct {
	resolve.Target
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// StartTLS is "required", "offered", "not offered" or "timed out"
	// (STARTTLS targets), "direct TLS" otherwise.
	StartTLS string            `json:"starttls"`
	Features string            `json:"features_before_tls,omitempty"`
	Versions []sim.VersionScan `json:"tls_versions"`
	Cipher   string            `json:"cipher,omitempty"`
	Chain    *certs.Chain      `json:"certificate,omitempty"`
}

// Accepted names the TLS versions the target accepted.
func (t *Target) Accepted() []string {
	var out []string
	for _, v := range t.Versions {
		if v.Accepted {
			out = append(out, strings.TrimPrefix(v.Version, "TLS "))
		}
	}
	return out
}

// MaxScans bounds the addresses of one probe scanned at once (each scan
// is one connection at a time, a TLS version after another).
const MaxScans = 4

var scanVersions = []uint16{tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS11, tls.VersionTLS10}

// Probe examines domain. addr, when set, is where to find it (no DNS).
func (env *Env) Probe(ctx context.Context, domain, addr string) *Report {
	start := time.Now()
	rep := &Report{Domain: domain, Harness: env.Harness.Domain(), Targets: []*Target{}, Diagnosis: []string{}, Findings: []string{}}
	var targets []*Target
	if addr != "" {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		env.Net.Register(domain, addr)
		targets = append(targets, &Target{Target: resolve.Target{Host: host, Port: p, Via: "--addr"}, Addr: addr})
	} else if env.Resolver != nil {
		res, err := env.Resolver.Lookup(ctx, domain)
		rep.Resolution = res
		if err == nil {
			// At most resolve.MaxAddrs addresses, each once.
			for _, a := range env.Resolver.Addresses(ctx, res) {
				if a.Err != nil {
					targets = append(targets, &Target{Target: a.Target, Error: a.Err.Error()})
					continue
				}
				targets = append(targets, &Target{Target: a.Target, Addr: a.Addr})
			}
		}
	}
	env.scanAll(ctx, domain, targets)
	rep.Targets = targets

	rep.Negotiation = env.Harness.Initiate(ctx, domain)
	// The server's own connections back (its verify connection, the
	// stream that carries its answer to the ping) end after ours: wait
	// for them, within the probe's deadline.
	wctx, cancel := context.WithTimeout(ctx, env.Timeout)
	_ = env.Harness.WaitIdle(wctx)
	cancel()
	rep.Inbound = env.takeInbound(domain)
	if rep.Inbound == nil {
		rep.Inbound = []*sim.Result{}
	}
	rep.Reply = replyPath(rep, env)
	rep.Partners = []PartnerView{}
	if rep.Learned = learn(rep, env.Harness.Settings()); rep.Learned != nil {
		rep.Partners = partnerViews(rep.Learned.Settings)
		rep.Lenient = lenient(rep)
	}
	rep.Diagnosis = diagnose(rep, env)
	rep.Findings = findings(rep)
	rep.Duration = time.Since(start)
	return rep
}

// scanAll scans the targets that have an address, MaxScans at once:
// each holds a socket for up to four handshakes.
func (env *Env) scanAll(ctx context.Context, domain string, targets []*Target) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, MaxScans)
	for _, t := range targets {
		if t.Addr == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(t *Target) {
			defer wg.Done()
			defer func() { <-sem }()
			env.scan(ctx, domain, t)
		}(t)
	}
	wg.Wait()
}

// printableChain makes the text of c that the peer wrote printable: its
// certificate's names, and the trust and problem sentences that quote
// them. It is done here, where a peer's chain enters the report, so that
// certs, below every layer that prints, judges chains and prints nothing.
func printableChain(c certs.Chain) certs.Chain {
	c.Subject, c.Issuer, c.Trust, c.Problem = printable.String(c.Subject), printable.String(c.Issuer), printable.String(c.Trust), printable.String(c.Problem)
	for i, n := range c.Names {
		c.Names[i] = printable.String(n)
	}
	return c
}

// scan tries every TLS version at t and judges the chain of the highest
// one accepted.
func (env *Env) scan(ctx context.Context, domain string, t *Target) {
	if !env.ScanVersions {
		return
	}
	from := env.Harness.Domain()
	for _, v := range scanVersions {
		s := sim.ScanTLS(ctx, t.Addr, domain, from, t.DirectTLS, v, env.Timeout)
		if t.Features == "" {
			t.Features = s.Features
		}
		t.Versions = append(t.Versions, s)
		if s.Accepted && t.Chain == nil {
			c := printableChain(certs.Analyze(s.Chain, env.PKI.Roots(), env.System, env.PKI.Hints(), domain, time.Now()))
			t.Chain, t.Cipher = &c, s.Cipher
		}
	}
	first := t.Versions[0]
	t.Reachable = first.Connected
	switch {
	case t.DirectTLS:
		t.StartTLS = "direct TLS"
	case strings.Contains(t.Features, "starttls (required)"):
		t.StartTLS = "required"
	case strings.Contains(t.Features, "starttls"):
		t.StartTLS = "offered"
	case t.Reachable && t.Features == "" && first.TimedOut:
		// Nothing came before the deadline: that is not "no STARTTLS".
		t.StartTLS = "timed out"
	case t.Reachable:
		t.StartTLS = "not offered"
	}
	if !t.Reachable {
		t.Error = first.Error
	}
}

// pct escapes the % of a text that goes into a format.
func pct(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// findings are what will break federation elsewhere, though not with
// the harness, each with its fix.
func findings(rep *Report) []string {
	out := []string{}
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, t := range rep.Targets {
		c := t.Chain
		if c == nil {
			continue
		}
		if !c.ClientAuth {
			add(fmt.Sprintf("the certificate of %s has no clientAuth EKU (%s), as public CAs issue them since 2026: "+
				"when %s connects out it presents this certificate as a TLS client, and servers that check the purpose "+
				"(ejabberd before 25.08, OpenSSL's defaults) refuse SASL EXTERNAL from it (\"unsupported certificate purpose\"). "+
				"Fix: keep dialback enabled on both sides (-SupportDialbackNegotiation $true), or have those servers upgraded; "+
				"a certificate with both serverAuth and clientAuth also works where a CA still issues one.", rep.Domain, c.Purposes, rep.Domain))
		}
		if c.DaysLeft < 30 && c.DaysLeft >= 0 {
			add(fmt.Sprintf("the certificate of %s expires in %d days (%s): renew it before partners start refusing it", rep.Domain, c.DaysLeft, c.NotAfter.UTC().Format("2006-01-02")))
		}
		if !c.Complete {
			add(fmt.Sprintf("%s sends an incomplete certificate chain (%d certificate(s), issued by %s): add the intermediate certificate to the server's certificate file", rep.Domain, c.Sent, c.Issuer))
		}
		if !c.NamesFor {
			add(fmt.Sprintf("the certificate of %s names %s, not %s: the XMPP domain must be in its names (RFC 6125, XEP-0178); the host an SRV record points to is not enough", rep.Domain, strings.Join(c.Names, ", "), rep.Domain))
		}
		if acc := t.Accepted(); len(acc) > 0 && (acc[len(acc)-1] == "1.0" || acc[len(acc)-1] == "1.1") {
			add(fmt.Sprintf("%s at %s still accepts TLS %s: current servers refuse it, and it offers a downgrade", rep.Domain, t.Addr, acc[len(acc)-1]))
		}
	}
	return out
}

// diagnose says in plain words what the observations mean, and what to
// do: built from the targets, the negotiation and the server's own
// connections back; it never advises an option that was given.
func diagnose(rep *Report, env *Env) []string {
	var out []string
	say := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	deadline := env.Timeout
	if rep.Resolution != nil && len(rep.Resolution.Targets) == 0 {
		switch {
		case len(rep.Resolution.NotOffered) > 0:
			say("%s publishes an SRV record with target \".\": it says it takes no server-to-server connections", rep.Domain)
		default:
			say("DNS gave no target for %s (asked: %s)", rep.Domain, queries(rep.Resolution))
		}
		return out
	}
	reachable := false
	for _, t := range rep.Targets {
		reachable = reachable || t.Reachable
	}
	if len(rep.Targets) > 0 && !reachable {
		say("none of the %d targets of %s answered: %s", len(rep.Targets), rep.Domain, rep.Targets[0].Error)
		return out
	}
	r := rep.Negotiation
	if rep.Lenient {
		say("%s", lenientDiagnosis(rep))
	}
	if r.AuthenticatedThenFailed() {
		say("%s → %s authenticates with %s, but %s's replies do not reach the harness: %s.", rep.Harness, rep.Domain, r.Authenticated.Name(), rep.Domain, rep.Reply)
	} else if r.Outcome.OK() && !rep.Lenient {
		s := fmt.Sprintf("federation works with %s", r.Outcome.Method.Name())
		if len(r.Recovered) > 0 {
			s += fmt.Sprintf(", after %s failed (%s)", r.Recovered[0].Step, r.Recovered[0].Message)
		}
		out = append(out, s+".")
	} else if f := r.Outcome.Failure; f != nil {
		backFailed := false
		for _, in := range rep.Inbound {
			backFailed = backFailed || in.Outcome.Failure != nil
		}
		if f.Step == outcome.StepTimeout && f.During == outcome.StepDialback && backFailed {
			say("%s never answered the harness's dialback request (%s): its verification failed on its connection back, below.", rep.Domain, f.Message)
		} else {
			out = append(out, failureAdvice(f, rep, env))
		}
	}
	// What the server did on its own connections back: one line for
	// each thing it did, however many times (a server that floods the
	// harness with connections makes one line, counted).
	type back struct {
		text        string // with %[1]s where the time goes
		first, last time.Time
		n           int
	}
	var backs []*back
	byText := map[string]*back{}
	for _, in := range rep.Inbound {
		what := "a stream of its own to " + rep.Harness + ", to verify dialback or to answer"
		if in.Role == outcome.Authoritative.String() {
			what = "its dialback verify connection"
		}
		var text string
		switch f := in.Outcome.Failure; {
		case f != nil && env.Harness.Settings().Cert == certs.Missing && (f.Condition == outcome.PolicyViolation || f.Condition == outcome.EncryptionRequired ||
			f.Condition == outcome.ConnectionClosed || f.Step == outcome.StepStartTLS || f.Step == outcome.StepStream):
			text = fmt.Sprintf("%s connected back %%[1]s (%s) and gave up: %s. It requires TLS there, and the harness had no certificate, so it could offer no STARTTLS: "+
				"probe with a certificate the server trusts (--cert valid, with --pki of the CA it trusts).", rep.Domain, what, pct(f.Message))
		case f != nil:
			text = fmt.Sprintf("%s connected back %%[1]s (%s): %s", rep.Domain, what, pct(f.Message))
		case len(in.Notes) > 0:
			text = fmt.Sprintf("%s connected back %%[1]s (%s): the harness %s", rep.Domain, what, pct(strings.Join(in.Notes, "; ")))
		case in.Outcome.OK():
			text = fmt.Sprintf("%s connected back %%[1]s (%s) and authenticated with %s", rep.Domain, what, in.Outcome.Method.Name())
		default:
			continue
		}
		b, ok := byText[text]
		if !ok {
			b = &back{text: text, first: in.At}
			byText[text] = b
			backs = append(backs, b)
		}
		b.n++
		b.last = in.At
	}
	for _, b := range backs {
		at := "at " + b.first.Format("15:04:05")
		if b.n > 1 {
			at = fmt.Sprintf("%d times, from %s to %s, each time", b.n, b.first.Format("15:04:05"), b.last.Format("15:04:05"))
		}
		say("%s", fmt.Sprintf(b.text, at))
	}
	if f := r.Outcome.Failure; f != nil && len(rep.Inbound) == 0 && (f.Step == outcome.StepDialback || f.Step == outcome.StepTimeout) {
		say("%s never connected back to the harness within %s: %s", rep.Domain, deadline,
			advise(env, "--dns-listen", "it must find the harness's domain: run with --dns-listen and point the server's resolver at it, or publish the harness's SRV record"))
	}
	return out
}

// lenientDiagnosis says that the harness got through only because it is
// lenient, and what the partners that matter do with the certificate.
func lenientDiagnosis(rep *Report) string {
	l := rep.Learned
	var refuse, accept []string
	var def PartnerView
	for _, v := range rep.Partners {
		if v.Profile == DefaultPartner {
			def = v
		}
		if v.Works() {
			accept = append(accept, v.Profile)
		} else {
			refuse = append(refuse, v.Profile)
		}
	}
	s := fmt.Sprintf("the certificate of %s is %s (%s): %s authenticated with %s only because the probe is lenient (strict=false: it refuses an invalid certificate only at SASL, to see what the server does next). "+
		"The default partner (profile %s, which checks certificates as strict servers do) fails: partner → %s %s, %s → partner %s.",
		rep.Domain, l.Cert, l.CertWhy, rep.Harness, rep.Negotiation.Outcome.Method.Name(), DefaultPartner, rep.Domain, def.ToServer, rep.Domain, def.FromServer)
	if len(refuse) > 0 {
		s += " Fails with: " + strings.Join(refuse, ", ") + "."
	}
	if len(accept) > 0 {
		s += " Works with: " + strings.Join(accept, ", ") + "."
	}
	return s + " Replace the certificate."
}

// replyPath says what became of the server's answer to the harness's
// ping when the harness authenticated and the answer did not come: ""
// otherwise.
func replyPath(rep *Report, env *Env) string {
	r := rep.Negotiation
	if r == nil || !r.AuthenticatedThenFailed() {
		return ""
	}
	f := r.Outcome.Failure
	switch {
	case f == nil:
		return "the negotiation ended after authentication"
	case f.Step == outcome.StepTimeout:
		return fmt.Sprintf("%s's answer to the harness's ping never came within %s, neither on this stream nor over a stream of its own to %s",
			rep.Domain, env.Timeout, rep.Harness)
	case f.Condition == outcome.PingError:
		return fmt.Sprintf("%s answered the harness's ping with an error", rep.Domain)
	}
	return fmt.Sprintf("after authentication, %s", f.Explain())
}

// advise returns the advice, unless its option was given.
func advise(env *Env, option, advice string) string {
	if env.Given[option] {
		return "(" + option + " was given)"
	}
	return advice
}

func failureAdvice(f *outcome.Failure, rep *Report, env *Env) string {
	text, _ := Advice(f, func(option, advice string) string { return advise(env, option, advice) })
	return text
}

// Advice says what a failure means and what to do about it, from its
// step, condition and side; specific is false when it can only repeat
// the failure. give, when not nil, may replace advice that names an
// option the user already gave.
func Advice(f *outcome.Failure, give func(option, advice string) string) (text string, specific bool) {
	if give == nil {
		give = func(_, advice string) string { return advice }
	}
	them := "the server"
	if f.By == outcome.Initiator {
		them = "the connecting end"
	}
	switch {
	case f.Step == outcome.StepTCP:
		return fmt.Sprintf("the server could not be reached (%s): check its DNS records and that it listens for s2s there.", f.Message), true
	case f.Step == outcome.StepTLSHandshake && f.Condition == outcome.ProtocolVersion:
		return fmt.Sprintf("no TLS version in common (%s): upgrade the end that stops at TLS 1.0/1.1, or allow 1.2 on it.", f.Message), true
	case f.Step == outcome.StepTLSHandshake && f.Condition == outcome.BadCertificate:
		return fmt.Sprintf("a certificate was refused during the TLS handshake (%s): replace it with one from a CA the other side trusts, for the XMPP domain, with its full chain; or let that side fall back to dialback (refuse at SASL rather than at the handshake). %s",
			f.Message, give("--pki", "If it comes from your own CA, give --pki the directory of that CA.")), true
	case f.Step == outcome.StepTLSHandshake:
		return fmt.Sprintf("the TLS handshake failed (%s): compare both ends' TLS settings and certificates.", f.Message), true
	case f.Step == outcome.StepStream && f.Condition == outcome.NotAuthorized:
		return fmt.Sprintf("%s closed the stream after TLS over a certificate (%s): it accepts only valid certificates (as Prosody's s2s_secure_auth); replace the certificate.", them, f.Message), true
	case f.Step == outcome.StepStream && (f.Condition == outcome.UnsupportedFeature || f.Condition == outcome.UndefinedCondition || f.Condition == outcome.ConnectionClosed || f.Condition == outcome.PolicyViolation):
		return fmt.Sprintf("%s found nothing to negotiate with (%s): align TLS, SASL and dialback on both sides.", them, f.Message), true
	case f.Step == outcome.StepStream && (f.Condition == outcome.HostUnknown || f.Condition == outcome.InvalidFrom || f.Condition == outcome.ImproperAddressing):
		return fmt.Sprintf("the stream's addresses were refused (%s): the domain configured for the partner is not the one its server serves.", f.Message), true
	case f.Step == outcome.StepStartTLS:
		return fmt.Sprintf("the two sides disagree about TLS (%s): set TLS to Optional on the side that requires it, or give the other side TLS and a certificate.", f.Message), true
	case f.Step == outcome.StepSASL && f.Condition == outcome.NotAuthorized:
		return fmt.Sprintf("SASL EXTERNAL was refused (%s): fix the certificate (for its domain, trusted, with clientAuth where the other side checks it), or enable dialback on both sides as a fallback.", f.Message), true
	case f.Step == outcome.StepSASL || f.Step == outcome.StepDialback && f.Condition == outcome.PolicyViolation:
		return fmt.Sprintf("no authentication method both sides accept (%s): enable dialback on both sides, or TLS and SASL on both.", f.Message), true
	case f.Step == outcome.StepDialback && f.Condition == outcome.DialbackInvalid:
		return fmt.Sprintf("the dialback key did not verify (%s): the nodes of one domain must share one dialback secret (DialbackPassphrase), and the authoritative server must be the one DNS names.", f.Message), true
	case f.Step == outcome.StepDialback && f.By == outcome.Receiver:
		return fmt.Sprintf("the server gave up on dialback (%s): it could not verify the key with the authoritative server; see what happened on its connection back.", f.Condition), true
	case f.Step == outcome.StepDialbackVerify:
		return fmt.Sprintf("dialback could not be verified (%s): the receiving server must reach the authoritative server of the connecting domain (DNS SRV record, firewall, TLS on both).", f.Message), true
	case f.Step == outcome.StepTimeout:
		return fmt.Sprintf("%s: one end waited for something that never came (during %s); the other end's logs say why it went silent.", f.Message, f.During), true
	}
	return f.Message + ".", false
}

func queries(r *resolve.Result) string {
	var qs []string
	for _, q := range r.Queries {
		qs = append(qs, q.Type+" "+q.Name+" → "+q.Answer)
	}
	return strings.Join(qs, "; ")
}

// Settings is what the harness negotiates with by default when probing:
// it goes on past an invalid certificate (to see what the server does
// next), and uses direct TLS targets.
func Settings() policy.Settings {
	s := policy.DefaultSettings()
	s.SetStrict(false)
	s.DirectTLS = true
	return s
}
