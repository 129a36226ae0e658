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

// realServers runs the real servers that a run's cases negotiate with,
// one per slot of the schedule: a setting's negotiations (or a share of
// them), run one at a time by one worker, since a real server keeps
// state between negotiations that parallel ones would trip over; its
// server is stopped after the last. Slots that one process can serve
// together, each as a host of its own domain (ejabberd's virtual hosts),
// share that process: it is started as soon as the run begins, since it
// is the costly one, and stops after the last negotiation of its last
// host. Other servers start when their first negotiation comes. One DNS
// responder on loopback tells the servers where the harness's endpoints
// are.
type realServers struct {
	mu        sync.Mutex
	dns       *loopdns.Server
	dnsErr    error
	procs     map[string]*realProcess // by process key
	procOf    map[string]string       // slot → process key
	remaining map[string]int          // negotiations still to run, by slot
	seq       atomic.Int64            // makes every harness domain unique
	starting  sync.WaitGroup          // processes started ahead of need
}

// realProcess is one server process and the slots it serves.
type realProcess struct {
	slots    []string // in the order of the schedule
	settings []realserver.Setting
	domains  []string

	ready   chan struct{}
	started bool
	servers map[string]realserver.Server // by slot, once ready
	err     error
}

func settingKey(s realserver.Setting) string { return s.Kind() + " " + s.String() }

func newRealServers(cases []*Case, slots []job) *realServers {
	r := &realServers{procs: map[string]*realProcess{}, procOf: map[string]string{}, remaining: map[string]int{}}
	for _, j := range slots {
		e, _ := cases[j.items[0].i].real()
		pk := realserver.ShareKey(e.Server)
		if pk == "" {
			pk = "alone " + j.slot
		}
		rp := r.procs[pk]
		if rp == nil {
			rp = &realProcess{ready: make(chan struct{})}
			r.procs[pk] = rp
		}
		r.procOf[j.slot] = pk
		r.remaining[j.slot] = len(j.items)
		rp.slots = append(rp.slots, j.slot)
		rp.settings = append(rp.settings, e.Server)
		rp.domains = append(rp.domains, e.Domain)
	}
	for _, rp := range r.procs {
		if len(rp.domains) > 1 {
			// Each host a domain of its own, named after its slot.
			for i, slot := range rp.slots {
				_, part, _ := strings.Cut(slot, "#")
				rp.domains[i] = hostLabel(rp.settings[i].ID()+"-"+part) + "." + rp.domains[i]
			}
		}
	}
	return r
}

// hostLabel makes a DNS label of a setting id ("starttls-optional+dialback"
// → "starttls-optional-dialback").
func hostLabel(id string) string {
	b := []byte(strings.ToLower(id))
	for i, ch := range b {
		if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// startAhead starts every process that serves several settings, in the
// background.
func (r *realServers) startAhead() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rp := range r.procs {
		if len(rp.slots) > 1 && !rp.started {
			rp.started = true
			r.starting.Add(1)
			go func() {
				defer r.starting.Done()
				r.start(rp)
			}()
		}
	}
}

// start starts rp's process; the caller has marked it started.
func (r *realServers) start(rp *realProcess) {
	defer close(rp.ready)
	dns, err := r.dnsServer()
	if err == nil {
		err = realserver.Require(rp.settings[0].Kind())
	}
	var pki *certs.PKI
	if err == nil {
		pki, err = certs.Default()
	}
	var srvs []realserver.Server
	if err == nil {
		srvs, err = realserver.StartShared(rp.settings, rp.domains, pki, dns.Addr())
	}
	if err != nil {
		rp.err = err
		return
	}
	rp.servers = map[string]realserver.Server{}
	for i, slot := range rp.slots {
		rp.servers[slot] = srvs[i]
	}
}

func (r *realServers) dnsServer() (*loopdns.Server, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dns == nil && r.dnsErr == nil {
		r.dns, r.dnsErr = loopdns.Start("127.0.0.1:0")
	}
	return r.dns, r.dnsErr
}

// server returns the running server of slot, starting its process if
// need be.
func (r *realServers) server(slot string) (realserver.Server, *loopdns.Server, error) {
	dns, err := r.dnsServer()
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	rp := r.procs[r.procOf[slot]]
	if rp == nil {
		r.mu.Unlock()
		return nil, nil, fmt.Errorf("no real server slot %q", slot)
	}
	start := !rp.started
	rp.started = true
	r.mu.Unlock()
	if start {
		r.start(rp)
	}
	<-rp.ready
	if rp.err != nil {
		return nil, nil, rp.err
	}
	return rp.servers[slot], dns, nil
}

// done counts one negotiation of slot as run, and stops its server after
// the last.
func (r *realServers) done(slot string) {
	r.mu.Lock()
	r.remaining[slot]--
	last := r.remaining[slot] == 0
	rp := r.procs[r.procOf[slot]]
	r.mu.Unlock()
	if !last || rp == nil {
		return
	}
	<-rp.ready
	if srv := rp.servers[slot]; srv != nil {
		srv.Stop()
	}
}

// close stops what is still running (after an interrupted run) and the
// DNS responder.
func (r *realServers) close() {
	r.starting.Wait()
	r.mu.Lock()
	var running []realserver.Server
	for _, rp := range r.procs {
		if !rp.started {
			continue
		}
		<-rp.ready
		for _, slot := range rp.slots {
			if r.remaining[slot] > 0 && rp.servers[slot] != nil {
				running = append(running, rp.servers[slot])
				r.remaining[slot] = 0
			}
		}
	}
	r.mu.Unlock()
	for _, srv := range running {
		srv.Stop()
	}
	if r.dns != nil {
		r.dns.Close()
	}
}

// run negotiates the case between the real server and an endpoint of the
// harness made for this negotiation alone, in the direction the case
// says. It returns the result and the server, which stays up until
// release is called (the caller may want the end of its log).
func (r *realServers) run(ctx context.Context, c *Case, slot string) (res *sim.Result, srv realserver.Server, release func(), err error) {
	real, _ := c.real()
	srv, dns, err := r.server(slot)
	if err != nil {
		r.done(slot)
		return nil, nil, func() {}, fmt.Errorf("starting %s (%s): %w", real.Server.Kind(), real.Server, err)
	}
	release = func() { r.done(slot) }
	res, err = r.negotiate(ctx, c, srv, dns)
	return res, srv, release, err
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
		if stray(res) {
			// A stream for another domain: the server reconnecting for
			// an earlier negotiation, whose endpoint had this port.
			return
		}
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

// stray says whether res is a stream that named another domain than the
// endpoint's: the harness's endpoints listen on ports the kernel hands
// out, one after another, and jabberd2 was seen reconnecting, for an
// earlier negotiation, to a port a later negotiation's endpoint had by
// then (host-unknown in 4 of 7,710 negotiations of a --repeat 3 run).
func stray(res *sim.Result) bool {
	f := res.Outcome.Failure
	return f != nil && f.Step == outcome.StepStream && f.Condition == outcome.HostUnknown && f.By == outcome.Receiver
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
