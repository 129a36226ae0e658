package scenarios

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
)

// realServers runs the real servers that a run's cases negotiate with:
// each setting's server is started when a case first needs it and is
// stopped once its last case has run (the runner gives all of them to
// one worker: a real server keeps state between negotiations that
// parallel ones would trip over). One DNS responder on loopback tells the
// servers where the harness's endpoints are.
type realServers struct {
	mu        sync.Mutex
	dns       *loopdns.Server
	dnsErr    error
	servers   map[string]*runningServer // by setting
	remaining map[string]int            // negotiations still to run, by setting
	seq       atomic.Int64              // makes every harness domain unique
}

type runningServer struct {
	ready chan struct{}
	srv   realserver.Server
	err   error
}

func settingKey(s realserver.Setting) string { return s.Kind() + " " + s.String() }

func newRealServers(cases []*Case, repeat int) *realServers {
	r := &realServers{servers: map[string]*runningServer{}, remaining: map[string]int{}}
	for _, c := range cases {
		if e, ok := c.real(); ok {
			r.remaining[settingKey(e.Server)] += repeat
		}
	}
	return r
}

// server returns the running server of setting s, starting it if need
// be.
func (r *realServers) server(s realserver.Setting, domain string) (*runningServer, *loopdns.Server, error) {
	r.mu.Lock()
	if r.dns == nil && r.dnsErr == nil {
		r.dns, r.dnsErr = loopdns.Start("127.0.0.1:0")
	}
	if r.dnsErr != nil {
		r.mu.Unlock()
		return nil, nil, r.dnsErr
	}
	key := settingKey(s)
	rs, ok := r.servers[key]
	if !ok {
		rs = &runningServer{ready: make(chan struct{})}
		r.servers[key] = rs
	}
	dns := r.dns
	r.mu.Unlock()
	if !ok {
		pki, err := certs.Default()
		if err == nil {
			if err = realserver.Require(s.Kind()); err == nil {
				rs.srv, err = s.Start(domain, pki, dns.Addr())
			}
		}
		rs.err = err
		close(rs.ready)
	}
	<-rs.ready
	return rs, dns, rs.err
}

// done counts one negotiation of setting s as run, and stops its server
// after the last.
func (r *realServers) done(s realserver.Setting) {
	r.mu.Lock()
	key := settingKey(s)
	r.remaining[key]--
	rs := r.servers[key]
	last := r.remaining[key] <= 0
	if last {
		delete(r.servers, key)
	}
	r.mu.Unlock()
	if last && rs != nil && rs.srv != nil {
		rs.srv.Stop()
	}
}

// close stops what is still running (after an interrupted run).
func (r *realServers) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, rs := range r.servers {
		<-rs.ready
		if rs.srv != nil {
			rs.srv.Stop()
		}
		delete(r.servers, k)
	}
	if r.dns != nil {
		r.dns.Close()
	}
}

// run negotiates the case between the real server and an endpoint of the
// harness made for this negotiation alone, in the direction the case
// says. It returns the result and the server, which stays up until
// release is called (the caller may want the end of its log).
func (r *realServers) run(ctx context.Context, c *Case) (res *sim.Result, srv realserver.Server, release func(), err error) {
	real, _ := c.real()
	rs, dns, err := r.server(real.Server, real.Domain)
	if err != nil {
		r.done(real.Server)
		return nil, nil, func() {}, fmt.Errorf("starting %s (%s): %w", real.Server.Kind(), real.Server, err)
	}
	release = func() { r.done(real.Server) }
	res, err = r.negotiate(ctx, c, rs.srv, dns)
	return res, rs.srv, release, err
}

// negotiate runs c with the running server srv.
func (r *realServers) negotiate(ctx context.Context, c *Case, srv realserver.Server, dns *loopdns.Server) (*sim.Result, error) {
	harness := c.Initiator
	serverInitiates := c.Initiator.Server != nil
	if serverInitiates {
		harness = c.Receiver
	}
	// A real server remembers the domains it talked to (open streams,
	// dialback results): a domain of its own for every negotiation.
	harness.Domain = fmt.Sprintf("%s-%d.test", strings.TrimSuffix(harness.Domain, ".test"), r.seq.Add(1))
	timeout := harness.Timeout
	if timeout <= 0 {
		timeout = sim.DefaultTimeout
	}
	n := sim.NewNetwork()
	n.Register(srv.Domain(), srv.Addr())
	cfg := endpointConfig(harness, n)
	cfg.Unlisted, cfg.RecordReads = false, true
	ep, err := sim.NewEndpoint(cfg)
	if err != nil {
		return nil, err
	}
	inbound := make(chan *sim.Result, 4)
	ep.OnInbound(func(res *sim.Result) {
		select {
		case inbound <- res:
		default:
		}
	})
	if err := ep.Start(); err != nil {
		return nil, err
	}
	defer ep.Close()
	if err := dns.Set(harness.Domain, ep.Addr()); err != nil {
		return nil, err
	}
	if serverInitiates {
		return awaitInbound(ctx, srv, harness.Domain, inbound, timeout), nil
	}
	return ep.Initiate(ctx, srv.Domain()), nil
}

// awaitInbound makes the server open its stream to domain and returns
// the harness's view of that negotiation.
func awaitInbound(ctx context.Context, srv realserver.Server, domain string, inbound chan *sim.Result, timeout time.Duration) *sim.Result {
	fail := func(cond outcome.Condition, msg string) *sim.Result {
		return &sim.Result{Initiator: srv.Domain(), Receiver: domain,
			Outcome: outcome.Failed(outcome.Failure{Step: outcome.StepTCP, Condition: cond, By: outcome.Initiator, Message: msg})}
	}
	if err := srv.Trigger(ctx, domain); err != nil {
		return fail(outcome.TriggerFailed, err.Error())
	}
	wait := timeout + time.Second
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case res := <-inbound:
		return res
	case <-t.C:
		return fail(outcome.NoConnection, fmt.Sprintf("the server did not open a stream to %s within %s", domain, wait))
	case <-ctx.Done():
		return fail(outcome.CancelledByCaller, "the run was interrupted")
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
