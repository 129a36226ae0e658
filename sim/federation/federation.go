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
// then is a timeout raised by the side that waits (see Classify).
const DefaultTimeout = 5 * time.Second

// Server is one side of a federation: a real server's setting and the
// domain it serves.
type Server struct {
	Setting realserver.Setting
	Domain  string
}

// Options tune Run.
type Options struct {
	// Timeout bounds each direction (DefaultTimeout when zero).
	Timeout time.Duration
	// NoRelay lets the servers meet directly: each direction is then
	// classified from the logs alone.
	NoRelay bool
	// PKI issues both servers' certificates (a new one when nil).
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
	// LogA and LogB are the servers' whole logs.
	LogA, LogB string
	// Timeout is the deadline each direction had.
	Timeout time.Duration
}

// Run starts a and b, makes each send a stanza to the other in turn and
// classifies both directions. Servers and relay are stopped before it
// returns. An error means the federation could not be set up (a server
// that did not start); what the servers did is in the Result.
func Run(ctx context.Context, a, b Server, opt Options) (*Result, error) {
	if a.Domain == b.Domain {
		return nil, fmt.Errorf("federation: both servers are %s; give them different domains", a.Domain)
	}
	for _, s := range []Server{a, b} {
		if err := sim.CheckDomain(s.Domain); err != nil {
			return nil, fmt.Errorf("federation: %w", err)
		}
		if err := realserver.Require(s.Setting.Kind()); err != nil {
			return nil, err
		}
	}
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	pki := opt.PKI
	if pki == nil {
		var err error
		if pki, err = certs.New(); err != nil {
			return nil, err
		}
	}
	dns, err := loopdns.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer dns.Close()

	// Both start at once: a start is mostly waiting.
	srvs := make([]realserver.Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []Server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = s.Setting.Start(s.Domain, pki, dns.Addr())
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range srvs {
			if s != nil {
				s.Stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res := &Result{A: a, B: b, Timeout: timeout}

	var rec *relay.Recorder
	if opt.NoRelay {
		for i, s := range []Server{a, b} {
			if err := dns.Set(s.Domain, srvs[i].Addr()); err != nil {
				return nil, err
			}
		}
	} else {
		rec = relay.NewRecorder()
		for i, s := range []Server{a, b} {
			other := []Server{b, a}[i]
			r, err := relay.Start(relay.Config{
				Domain: s.Domain, Target: srvs[i].Addr(), Peer: other.Domain,
				Cert: certOf(pki, s), PeerCert: certOf(pki, other), Roots: pki.Roots(),
				Recorder: rec,
			})
			if err != nil {
				return nil, err
			}
			defer r.Close()
			if err := dns.Set(s.Domain, r.Addr()); err != nil {
				return nil, err
			}
		}
	}

	for _, d := range []struct {
		name     string
		from, to int
	}{{"a-to-b", 0, 1}, {"b-to-a", 1, 0}} {
		from, to := []Server{a, b}[d.from], []Server{a, b}[d.to]
		dir := Direction{Name: d.name, Initiator: from.Domain, Receiver: to.Domain, Source: "logs"}
		if rec != nil {
			dir.Source = "relay"
		}
		start := time.Now()
		if rec != nil {
			rec.Mark(from.Domain, to.Domain, start)
		}
		trigCtx, cancel := context.WithTimeout(ctx, timeout)
		err := srvs[d.from].Trigger(trigCtx, to.Domain)
		cancel()
		if err != nil {
			dir.Observed = outcome.Failed(outcome.Failure{Step: outcome.StepTCP, Condition: outcome.TriggerFailed, By: outcome.Initiator, Message: err.Error()})
			res.Directions = append(res.Directions, dir)
			continue
		}
		settled := watch(ctx, timeout, func() bool {
			dir.Logs = judge(from, to, srvs[d.from], srvs[d.to])
			if !dir.Logs.Settled() {
				return false
			}
			// With the relay, until its recording has come to an end too.
			return rec == nil || rec.Classify(from.Domain, to.Domain, false).Settled
		})
		dir.Duration = time.Since(start)
		if rec != nil {
			c := rec.Classify(from.Domain, to.Domain, !settled)
			dir.Observed, dir.Transcript, dir.Notes, dir.TLS = c.Outcome, c.Transcript, c.Notes, c.TLS
			dir.CrossCheck = crossCheck(c.Outcome, dir.Logs, settled)
		} else {
			dir.Observed = dir.Logs.Outcome()
			if !settled {
				dir.Observed = outcome.Failed(outcome.Failure{Step: outcome.StepTimeout, Condition: outcome.ConnectionTimeout,
					Message: fmt.Sprintf("neither log said within %s that the stream authenticated or failed", timeout)})
			}
		}
		res.Directions = append(res.Directions, dir)
		if ctx.Err() != nil {
			break
		}
	}
	res.LogA, res.LogB = srvs[0].Log(), srvs[1].Log()
	return res, nil
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
func judge(from, to Server, fs, ts realserver.Server) serverlog.Verdict {
	in := serverlog.Parse(from.Setting.Kind(), from.Domain, fs.Log())
	re := serverlog.Parse(to.Setting.Kind(), to.Domain, ts.Log())
	return serverlog.Judge(from.Domain, to.Domain, in, re)
}

// watchEvery is how often the logs are read while a direction is
// watched: the servers write them as files, which tell no one.
const watchEvery = 20 * time.Millisecond

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

// crossCheck compares the relay's classification with the logs'.
func crossCheck(o outcome.Outcome, v serverlog.Verdict, settled bool) string {
	switch {
	case !settled && !v.Settled():
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

// Emulate runs the engine with in's profile initiating to re's, with
// the deadline of the federation's direction for the initiator and
// twice that for the receiver, so that when both wait for something
// that never comes the initiator's deadline ends it, as the
// federation's watch does.
func Emulate(ctx context.Context, in, re policy.Settings, inDomain, reDomain string, timeout time.Duration, pki *certs.PKI) (*sim.Result, error) {
	in.AnswerPings, re.AnswerPings = policy.AnswerPingsAuto, policy.AnswerPingsAuto
	if timeout <= 0 {
		timeout = DefaultTimeout
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
	}{{inDomain, in, timeout}, {reDomain, re, 2 * timeout}} {
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
