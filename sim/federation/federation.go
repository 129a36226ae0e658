// Package federation makes two real servers meet, as they would in the
// field: each started privately (package realserver) under one loopback
// DNS responder and one test CA, each finding the other through its SRV
// record, and made to send a stanza to the other through its own admin
// interface, once from A to B and once from B to A. Each direction is
// observed and classified as the one typed outcome of package outcome:
// from a recording of the wire between them (package relay: the main
// streams and the dialback verify connections, inside TLS included),
// cross-checked with both servers' logs (package serverlog), or from
// the logs alone.
//
// What the two servers' profiles predict (the oracle) and what the
// engine playing both profiles comes to are computed beside it, so that
// a caller can compare the three.
package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
	"xmppneg/sim/relay"
	"xmppneg/sim/serverlog"
)

// DefaultTimeout is how long a direction is watched before it is
// classified as a timeout. Both servers' own deadlines are longer (the
// launchers set Prosody's s2s_timeout and ejabberd's negotiation and
// outgoing timeouts to 30 s, jabberd2 waits 10 s for its queue), so this
// one governs: a direction that has neither authenticated nor failed by
// then is a timeout raised by the side that waits for the other's move
// (see relay.Recorder.Classify).
const DefaultTimeout = 5 * time.Second

// Server is one side of a federation: a real server's setting and the
// domain it serves.
type Server struct {
	Setting realserver.Setting
	Domain  string
	// Group, when not empty, lets servers of the same group whose
	// settings can share a process (realserver.ShareKey: ejabberd's
	// virtual hosts) be started as one. Servers that are to meet each
	// other must not share one: a process routes between its own hosts
	// without s2s.
	Group string
}

// Options tune a federation.
type Options struct {
	// Timeout bounds each direction (DefaultTimeout when zero).
	Timeout time.Duration
	// NoRelay lets the servers meet directly: each direction is then
	// classified from the logs alone.
	NoRelay bool
	// PKI issues every server's certificate (a new one when nil).
	PKI *certs.PKI
}

// Direction is one direction of a federation: A's stream to B, or B's
// to A.
type Direction struct {
	// Name is "a-to-b" or "b-to-a".
	Name string
	// Initiator and Receiver are the domains.
	Initiator, Receiver string
	// Observed is what the direction came to: classified from the relay's
	// recording (Source "relay") or from the logs (Source "logs").
	Observed outcome.Outcome
	Source   string
	// Logs is what both servers' logs say of this direction.
	Logs serverlog.Verdict
	// CrossCheck is empty when the logs agree with the recording, and
	// says how they differ otherwise.
	CrossCheck string
	// Transcript is what travelled, main and verify connections, from
	// the relay (nil without it).
	Transcript []sim.Entry
	// Notes are what the relay did that is not XML.
	Notes []string
	// TLS is the main connection's TLS, as the relay saw it.
	TLS      *sim.TLSInfo
	Duration time.Duration
}

// Result is a federation run.
type Result struct {
	A, B       Server
	Directions []Direction
	// LogA and LogB are the servers' whole logs, read once both
	// directions were classified.
	LogA, LogB string
	// Timeout is the deadline each direction had.
	Timeout time.Duration
}

// Mesh is a set of running real servers under one loopback DNS
// responder and one test CA, each behind a recording relay (unless
// NoRelay), any two of which can be made to meet.
type Mesh struct {
	opt     Options
	pki     *certs.PKI
	dns     *loopdns.Server
	rec     *relay.Recorder
	members map[string]*member // by domain
	relays  []*relay.Relay
	servers []realserver.Server
}

type member struct {
	Server
	srv realserver.Server
}

// Run starts a and b, makes each send a stanza to the other in turn and
// classifies both directions. Servers and relays are stopped before it
// returns. An error means the federation could not be set up (a server
// that did not start).
func Run(ctx context.Context, a, b Server, opt Options) (*Result, error) {
	if a.Domain == b.Domain {
		return nil, fmt.Errorf("federation: both servers are %s; give them different domains", a.Domain)
	}
	a.Group, b.Group = "", ""
	m, err := StartMesh(ctx, []Server{a, b}, opt)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.Federate(ctx, a.Domain, b.Domain)
}

// StartMesh starts every server (at once: a start is mostly waiting)
// and the relays in front of them.
func StartMesh(ctx context.Context, servers []Server, opt Options) (*Mesh, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	m := &Mesh{opt: opt, pki: opt.PKI, members: map[string]*member{}}
	for _, s := range servers {
		if err := sim.CheckDomain(s.Domain); err != nil {
			return nil, fmt.Errorf("federation: %w", err)
		}
		if _, dup := m.members[s.Domain]; dup {
			return nil, fmt.Errorf("federation: %s given twice", s.Domain)
		}
		if err := realserver.Require(s.Setting.Kind()); err != nil {
			return nil, err
		}
		m.members[s.Domain] = &member{Server: s}
	}
	if m.pki == nil {
		var err error
		if m.pki, err = certs.New(); err != nil {
			return nil, err
		}
	}
	var err error
	if m.dns, err = loopdns.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	// Processes: one per server, or one per group of servers that can
	// share one.
	var procs [][]Server
	byKey := map[string]int{}
	for _, s := range servers {
		key := ""
		if s.Group != "" {
			if k := realserver.ShareKey(s.Setting); k != "" {
				key = s.Group + " " + k
			}
		}
		if i, seen := byKey[key]; seen && key != "" {
			procs[i] = append(procs[i], s)
			continue
		}
		byKey[key] = len(procs)
		procs = append(procs, []Server{s})
	}
	started := make([][]realserver.Server, len(procs))
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, group := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			settings := make([]realserver.Setting, len(group))
			domains := make([]string, len(group))
			for j, s := range group {
				settings[j], domains[j] = s.Setting, s.Domain
			}
			if len(group) == 1 {
				srv, err := group[0].Setting.Start(group[0].Domain, m.pki, m.dns.Addr())
				if err == nil {
					started[i] = []realserver.Server{srv}
				}
				errs[i] = err
				return
			}
			started[i], errs[i] = realserver.StartShared(settings, domains, m.pki, m.dns.Addr())
		}()
	}
	wg.Wait()
	for i, group := range procs {
		for j, s := range group {
			if j < len(started[i]) {
				m.members[s.Domain].srv = started[i][j]
				m.servers = append(m.servers, started[i][j])
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var peerCerts []*tls.Certificate
	for _, s := range servers {
		peerCerts = append(peerCerts, certOf(m.pki, s))
	}
	if !opt.NoRelay {
		m.rec = relay.NewRecorder()
	}
	for _, s := range servers {
		addr := m.members[s.Domain].srv.Addr()
		if m.rec != nil {
			r, err := relay.Start(relay.Config{Domain: s.Domain, Target: addr, Cert: certOf(m.pki, s),
				PeerCerts: peerCerts, Roots: m.pki.Roots(), Recorder: m.rec})
			if err != nil {
				return nil, err
			}
			m.relays = append(m.relays, r)
			addr = r.Addr()
		}
		if err := m.dns.Set(s.Domain, addr); err != nil {
			return nil, err
		}
	}
	ok = true
	return m, nil
}

// Close stops the relays, the servers and the DNS responder.
func (m *Mesh) Close() {
	for _, r := range m.relays {
		r.Close()
	}
	for _, s := range m.servers {
		s.Stop()
	}
	if m.dns != nil {
		m.dns.Close()
	}
}

// PKI is the CA that issued the servers' certificates.
func (m *Mesh) PKI() *certs.PKI { return m.pki }

// Timeout is each direction's deadline.
func (m *Mesh) Timeout() time.Duration { return m.opt.Timeout }

// Federate makes the servers of domains a and b meet: a sends a stanza
// to b, and once that direction is classified, b to a. Several pairs of
// one mesh may federate at once.
func (m *Mesh) Federate(ctx context.Context, a, b string) (*Result, error) {
	ma, mb := m.members[a], m.members[b]
	if ma == nil || mb == nil || a == b {
		return nil, fmt.Errorf("federation: %s and %s are not two servers of the mesh", a, b)
	}
	res := &Result{A: ma.Server, B: mb.Server, Timeout: m.opt.Timeout}
	for _, d := range []struct {
		name     string
		from, to *member
	}{{"a-to-b", ma, mb}, {"b-to-a", mb, ma}} {
		res.Directions = append(res.Directions, m.direction(ctx, d.name, d.from, d.to))
		if ctx.Err() != nil {
			break
		}
	}
	res.LogA, res.LogB = ma.srv.Log(), mb.srv.Log()
	return res, nil
}

// logGrace is how long the logs are given, once the recording has
// settled, to say so too: a server writes its log line a moment after
// the element that settles the stream.
const logGrace = 2 * time.Second

// direction triggers and classifies one direction.
func (m *Mesh) direction(ctx context.Context, name string, from, to *member) Direction {
	dir := Direction{Name: name, Initiator: from.Domain, Receiver: to.Domain, Source: "logs"}
	if m.rec != nil {
		dir.Source = "relay"
	}
	timeout := m.opt.Timeout
	start := time.Now()
	if m.rec != nil {
		m.rec.Mark(from.Domain, to.Domain, start)
	}
	trigCtx, cancel := context.WithTimeout(ctx, timeout)
	err := from.srv.Trigger(trigCtx, to.Domain)
	cancel()
	if err != nil {
		dir.Observed = outcome.Failed(outcome.Failure{Step: outcome.StepTCP, Condition: outcome.TriggerFailed, By: outcome.Initiator, Message: err.Error()})
		return dir
	}
	logs := func() bool {
		dir.Logs = judge(from, to)
		return dir.Logs.Settled()
	}
	if m.rec == nil {
		settled := watch(ctx, timeout, logs)
		dir.Duration = time.Since(start)
		dir.Observed = dir.Logs.Outcome()
		if !settled {
			dir.Observed = outcome.Failed(outcome.Failure{Step: outcome.StepTimeout, Condition: outcome.ConnectionTimeout,
				Message: fmt.Sprintf("neither log said within %s that the stream authenticated or failed", timeout)})
		}
		return dir
	}
	settled := watch(ctx, timeout, func() bool { return m.rec.Classify(from.Domain, to.Domain, false).Settled })
	dir.Duration = time.Since(start)
	c := m.rec.Classify(from.Domain, to.Domain, !settled)
	dir.Observed, dir.Transcript, dir.Notes, dir.TLS = c.Outcome, c.Transcript, c.Notes, c.TLS
	// The logs, for the cross-check: given a moment to catch up (to the
	// method, when the recording saw one: a server may log a failed
	// attempt before the one that succeeds).
	logsSettled := watch(ctx, logGrace, func() bool {
		if !logs() {
			return false
		}
		return !c.Outcome.OK() || dir.Logs.Method != 0
	})
	if !c.Outcome.OK() && dir.Logs.Method != 0 {
		// The logs say it authenticated after all: an initiator that
		// tries dialback on a new connection once EXTERNAL was refused
		// (ejabberd 24) does so after the first one ended.
		if again := m.rec.Classify(from.Domain, to.Domain, !settled); again.Outcome.OK() {
			c = again
			dir.Observed, dir.Transcript, dir.Notes, dir.TLS = c.Outcome, c.Transcript, c.Notes, c.TLS
		}
	}
	dir.CrossCheck = crossCheck(c.Outcome, dir.Logs, settled, logsSettled)
	return dir
}

// certOf is the certificate s presents, nil when it has none.
func certOf(pki *certs.PKI, s Server) *tls.Certificate {
	st := s.Setting.Policy().Cert
	if st == "" || st == certs.Missing {
		return nil
	}
	c, err := pki.Certificate(s.Domain, st)
	if err != nil {
		return nil
	}
	return c
}

// judge reads both servers' logs on the stream from from to to.
func judge(from, to *member) serverlog.Verdict {
	in := serverlog.Parse(from.Setting.Kind(), from.Domain, from.srv.Log())
	re := serverlog.Parse(to.Setting.Kind(), to.Domain, to.srv.Log())
	return serverlog.Judge(from.Domain, to.Domain, in, re)
}

// watchEvery is how often the recording (or the logs) is looked at
// while a direction is watched: the servers write their logs as files,
// which tell no one.
const watchEvery = 25 * time.Millisecond

// watch calls done until it says true, ctx ends or within passes; it
// reports whether done said true.
func watch(ctx context.Context, within time.Duration, done func() bool) bool {
	t := time.NewTimer(within)
	defer t.Stop()
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		if done() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return done()
		case <-tick.C:
		}
	}
}

// crossCheck compares the relay's classification with the logs'. Logs
// that say nothing of a stream the recording saw fail (a server that
// waits, or one that logs nothing at its level) contradict nothing.
func crossCheck(o outcome.Outcome, v serverlog.Verdict, settled, logsSettled bool) string {
	switch {
	case !logsSettled && !o.OK():
		return ""
	case o.OK() && v.Method != 0 && o.Method != v.Method:
		return fmt.Sprintf("the recording says %s, the logs %s", o.Method, v.Method)
	case o.OK() && v.Method == 0:
		return fmt.Sprintf("the recording says %s, the logs say no authentication", o.Method)
	case !o.OK() && v.Method != 0:
		return fmt.Sprintf("the recording says %s, the logs %s", o, v.Method)
	case !o.OK() && v.Condition != "" && o.Failure != nil && o.Failure.Condition != v.Condition:
		return fmt.Sprintf("the recording says %s, the logs name %s", o, v.Condition)
	}
	return ""
}

// Predict is what the two profiles predict for the stream from in to
// re. The stanza that triggers it is a message, not a ping: nothing is
// answered, so the receiver's way of answering is left out.
func Predict(in, re policy.Settings) policy.Prediction {
	in.AnswerPings, re.AnswerPings = policy.AnswerPingsAuto, policy.AnswerPingsAuto
	return policy.Predict(in, re)
}

// Emulate runs the engine with in's profile initiating to re's. The
// federation's convention for two servers that both wait is that the
// one waiting for the other's move is the one whose deadline ends it
// (see relay.Recorder.Classify); the engine cannot know beforehand
// which side that is, so the side the prediction names for a timeout
// gets the direction's deadline and the other twice that (the
// initiator, when the prediction is no timeout).
func Emulate(ctx context.Context, in, re policy.Settings, inDomain, reDomain string, timeout time.Duration, pki *certs.PKI) (*sim.Result, error) {
	in.AnswerPings, re.AnswerPings = policy.AnswerPingsAuto, policy.AnswerPingsAuto
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	inT, reT := timeout, 2*timeout
	if f := policy.Predict(in, re).Outcome.Failure; f != nil && f.Step == outcome.StepTimeout && f.By == outcome.Receiver {
		inT, reT = 2*timeout, timeout
	}
	n := sim.NewNetwork()
	var eps []*sim.Endpoint
	defer func() {
		for _, e := range eps {
			e.Close()
		}
	}()
	for _, p := range []struct {
		domain string
		s      policy.Settings
		t      time.Duration
	}{{inDomain, in, inT}, {reDomain, re, reT}} {
		e, err := sim.NewEndpoint(sim.Config{Domain: p.domain, Settings: p.s, Net: n, Timeout: p.t, PKI: pki})
		if err != nil {
			return nil, err
		}
		if err := e.Start(); err != nil {
			return nil, err
		}
		eps = append(eps, e)
	}
	return eps[0].Initiate(ctx, reDomain), nil
}

// Describe is one line on a server: "prosody (s2s_require_encryption=true,…)".
func (s Server) Describe() string {
	return fmt.Sprintf("%s %s (%s)", s.Setting.Kind(), s.Domain, strings.TrimSpace(s.Setting.String()))
}
