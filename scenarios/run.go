package scenarios

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/realserver"
)

// Negotiation is one case run: what was observed, what was expected, and
// whether they agree.
type Negotiation struct {
	Case   *Case       `json:"-"`
	Result *sim.Result `json:"-"`
	// Expected is the outcome the case expects: written out, or the
	// oracle's prediction.
	Expected   outcome.Outcome    `json:"-"`
	Prediction *policy.Prediction `json:"-"`
	Pass       bool               `json:"-"`
	// Why says how the result differs from the expectation.
	Why string `json:"-"`
	// Note says how a result that passes still differs from the
	// prediction in what the comparison leaves out (PredictedOutcome).
	Note string `json:"-"`
	// Unstable is set when --repeat saw this case end differently.
	Unstable []string `json:"-"`
	// Cancelled is set when the run was interrupted before this
	// negotiation could end: it is neither passed nor failed.
	Cancelled bool `json:"-"`
	// ServerLog is the end of a real server's log, kept when the
	// negotiation with it did not pass.
	ServerLog string `json:"-"`
	// Emulated is, for a negotiation with a real server, the same
	// negotiation with the harness's engine playing the server's profile.
	Emulated *sim.Result `json:"-"`
	// Transcript is the path of the transcript file, when one was written.
	Transcript string `json:"-"`
}

// Observed is what the negotiation came to.
func (n *Negotiation) Observed() outcome.Outcome {
	if n.Result == nil {
		return outcome.AnyFailure()
	}
	return n.Result.Outcome
}

// Status is PASS, FAIL, CANCELLED, or DONE when nothing was expected.
func (n *Negotiation) Status() string {
	switch {
	case n.Cancelled:
		return "CANCELLED"
	case n.Case.Expect.Oracle == Unchecked && n.Result != nil:
		return "DONE"
	case n.Pass:
		return "PASS"
	}
	return "FAIL"
}

// Options tune a run.
type Options struct {
	Jobs int // workers; 0 means the number of CPUs
	// RealJobs is how many real server settings are negotiated with at
	// once (0: DefaultRealJobs). Those negotiations mostly wait for the
	// servers, so more of them run at once than there are CPUs.
	RealJobs int
	Filter   *regexp.Regexp // only cases whose id matches
	Shard    int            // 1-based shard to run, with Shards
	Shards   int
	Repeat   int // run every case this many times; 0 means once
	// Progress, when set, is called after each negotiation with the
	// count done and the total.
	Progress func(done, total int)
	// Each, when set, is called with every negotiation as soon as it and
	// every one declared before it are done: in declaration order.
	Each func(*Negotiation)
	// KeepTranscripts keeps the transcript of every negotiation in the
	// results. Without it a negotiation that passed gives its transcript
	// up once Each has seen it (which may write it to a file): a sweep of
	// thousands needs their outcomes, not their XML, and its memory stays
	// flat. A negotiation that did not pass always keeps its transcript.
	KeepTranscripts bool
}

// SetDefaultTimeout gives every endpoint of cases whose scenario sets no
// timeout (timeout: in the file) the deadline d instead of
// sim.DefaultTimeout.
func SetDefaultTimeout(cases []*Case, d time.Duration) {
	for _, c := range cases {
		for _, e := range append([]*Endpoint{&c.Initiator, &c.Receiver}, ptrs(c.Others)...) {
			if e.Timeout == 0 {
				e.Timeout = d
			}
		}
	}
}

func ptrs(es []Endpoint) []*Endpoint {
	out := make([]*Endpoint, len(es))
	for i := range es {
		out[i] = &es[i]
	}
	return out
}

// Select applies the filter and the shard to cases, keeping their order.
func Select(cases []*Case, opt Options) []*Case {
	var out []*Case
	for i, c := range cases {
		if opt.Filter != nil && !opt.Filter.MatchString(c.ID) {
			continue
		}
		if opt.Shards > 1 && i%opt.Shards != opt.Shard-1 {
			continue
		}
		out = append(out, c)
	}
	return out
}

// Run runs the cases on a pool of workers and returns their negotiations
// in the order of the cases, whatever order they finished in. When ctx
// ends, no more negotiations start, those under way are cut short and
// marked Cancelled, and those never started are left out: the result is
// then shorter than cases.
func Run(ctx context.Context, cases []*Case, opt Options) []*Negotiation {
	workers := opt.Jobs
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	repeat := max(opt.Repeat, 1)
	out := make([]*Negotiation, len(cases))
	runs := make([]int, len(cases)) // repetitions finished, per case
	var mu sync.Mutex
	done, next := 0, 0 // negotiations finished; first case not yet handed to Each
	record := func(i, rep int, n *Negotiation) {
		mu.Lock()
		defer mu.Unlock()
		switch prev := out[i]; {
		case prev == nil:
			out[i] = n
		case n.Cancelled:
		case !prev.Cancelled && !prev.Observed().Same(n.Observed()):
			prev.Unstable = append(prev.Unstable, fmt.Sprintf("run %d: %s", rep+1, n.Observed()))
			prev.Pass = false
			prev.Why = fmt.Sprintf("unstable across %d runs: first %s", repeat, prev.Observed())
		}
		runs[i]++
		done++
		if opt.Progress != nil {
			opt.Progress(done, len(cases)*repeat)
		}
		for next < len(cases) && runs[next] == repeat {
			if opt.Each != nil {
				opt.Each(out[next])
			}
			if !opt.KeepTranscripts {
				out[next].dropTranscripts()
			}
			next++
		}
	}
	ownJobs, realJobs := schedule(cases, repeat)
	reals := newRealServers(cases, realJobs)
	defer reals.close()
	reals.startAhead()
	realWorkers := opt.RealJobs
	if realWorkers <= 0 {
		realWorkers = DefaultRealJobs()
	}
	own, real := make(chan job), make(chan job)
	var wg sync.WaitGroup
	stopped := stopClock(ctx)
	work := func(jobs <-chan job) {
		defer wg.Done()
		p := newPool(reals)
		p.stoppedAt = stopped
		defer p.close()
		for j := range jobs {
			for _, it := range j.items {
				if ctx.Err() != nil {
					break
				}
				record(it.i, it.rep, p.run(ctx, cases[it.i], j.slot))
			}
		}
	}
	for range workers {
		wg.Add(1)
		go work(own)
	}
	for range realWorkers {
		wg.Add(1)
		go work(real)
	}
	feed := func(to chan<- job, jobs []job) {
		defer close(to)
		for _, j := range jobs {
			select {
			case to <- j:
			case <-ctx.Done():
				return
			}
		}
	}
	go feed(real, realJobs)
	feed(own, ownJobs)
	wg.Wait()
	var ran []*Negotiation
	for _, n := range out {
		if n != nil {
			ran = append(ran, n)
		}
	}
	return ran
}

// dropTranscripts gives up the transcripts of a negotiation that
// passed.
func (n *Negotiation) dropTranscripts() {
	if !n.Pass || n.Cancelled {
		return
	}
	if n.Result != nil {
		n.Result.Transcript = nil
	}
	if n.Emulated != nil {
		n.Emulated.Transcript = nil
	}
}

// job is what one worker runs in a row: one negotiation between the
// harness's endpoints, or the negotiations of one real server slot, so
// that its server starts once, serves them one at a time and stops,
// while other workers run other slots.
type job struct {
	items []item
	slot  string // the real server slot, or "" for the harness's own
}

type item struct{ i, rep int }

// DefaultRealJobs is how many real server slots a run negotiates with at
// once by default: twice the CPUs, since those negotiations mostly wait
// for the servers; as many as the CPUs under the race detector, where the
// harness's side of each costs several times the CPU and a starved
// negotiation would wait out its deadline.
func DefaultRealJobs() int {
	if raceEnabled {
		return runtime.NumCPU()
	}
	return 2 * runtime.NumCPU()
}

// slotSize is the most negotiations one real server slot runs. A
// setting with more (all repetitions counted) is split into slots of
// about equal size, each with a server of its own, which run at once:
// one setting of 154 negotiations, 17 of which wait out a deadline, took
// longer than everything else of its suite.
const slotSize = 60

// schedule orders the work: the negotiations between the harness's own
// endpoints repetition by repetition, and apart from them each real
// server setting's negotiations (every repetition) in slots of at most
// slotSize, the largest first, so that the longest does not start last.
func schedule(cases []*Case, repeat int) (own, real []job) {
	byKey := map[string]int{} // setting key → index in groups
	var groups [][]item
	var keys []string
	for rep := 0; rep < repeat; rep++ {
		for i, c := range cases {
			e, ok := c.real()
			if !ok {
				own = append(own, job{items: []item{{i, rep}}})
				continue
			}
			key := settingKey(e.Server)
			k, seen := byKey[key]
			if !seen {
				k = len(groups)
				byKey[key] = k
				groups = append(groups, nil)
				keys = append(keys, key)
			}
			groups[k] = append(groups[k], item{i, rep})
		}
	}
	for k, g := range groups {
		parts := (len(g) + slotSize - 1) / slotSize
		for p := range parts {
			// Every parts-th item: each slot gets its share of every
			// repetition and of every kind of partner.
			var items []item
			for i := p; i < len(g); i += parts {
				items = append(items, g[i])
			}
			real = append(real, job{items: items, slot: fmt.Sprintf("%s#%d", keys[k], p+1)})
		}
	}
	slices.SortStableFunc(real, func(a, b job) int { return len(b.items) - len(a.items) })
	return own, real
}

// RunCase starts the endpoints of c, runs the negotiation and checks it
// against the expectation.
func RunCase(ctx context.Context, c *Case) *Negotiation {
	_, real := schedule([]*Case{c}, 1)
	reals := newRealServers([]*Case{c}, real)
	defer reals.close()
	p := newPool(reals)
	defer p.close()
	slot := ""
	if len(real) > 0 {
		slot = real[0].slot
	}
	return p.run(ctx, c, slot)
}

// pool keeps the endpoints a worker has started, on a network of the
// worker's own, so that a sweep of thousands of negotiations does not open
// and close thousands of listeners: each closed socket leaves a TIME_WAIT
// entry behind, and enough of them slow the kernel's choice of a free
// port for every later listener.
type pool struct {
	net   *sim.Network
	eps   map[string]*sim.Endpoint
	reals *realServers
	// stoppedAt is when the run was interrupted (zero: not, or not known).
	stoppedAt func() time.Time
}

func newPool(reals *realServers) *pool {
	return &pool{net: sim.NewNetwork(), eps: map[string]*sim.Endpoint{}, reals: reals}
}

func (p *pool) close() {
	for _, e := range p.eps {
		e.Close()
	}
}

func (p *pool) endpoint(e Endpoint) (*sim.Endpoint, error) {
	// Settings.String leaves the secret out: name it, or two nodes of a
	// domain with different secrets would share one endpoint.
	key := fmt.Sprintf("%s|%s|secret=%q|%s|%s|%t|%d", e.Domain, e.Settings, e.Settings.Secret, e.Faults, e.Timeout, e.RecordReads, e.MaxElementBytes)
	if ep, ok := p.eps[key]; ok {
		return ep, nil
	}
	// Registration in the address book is per case (see run).
	ep, err := sim.NewEndpoint(endpointConfig(e, p.net))
	if err != nil {
		return nil, err
	}
	if err := ep.Start(); err != nil {
		return nil, err
	}
	p.eps[key] = ep
	return ep, nil
}

func endpointConfig(e Endpoint, n *sim.Network) sim.Config {
	return sim.Config{Domain: e.Domain, Settings: e.Settings, Net: n, Unlisted: true,
		Timeout: e.Timeout, Faults: e.Faults, RecordReads: e.RecordReads, Limits: sim.Limits{MaxElementBytes: e.MaxElementBytes}}
}

// run runs c, in the real server slot given for a case with a real
// server, and checks the result.
func (p *pool) run(ctx context.Context, c *Case, slot string) *Negotiation {
	n := &Negotiation{Case: c}
	n.expect()
	var err error
	var srv realserver.Server
	if _, ok := c.real(); ok {
		// The engine playing the server's profile meets the same partner
		// meanwhile: it needs nothing of the real server, and when both
		// wait out a deadline they wait together. Not under the race
		// detector, where CPU, not waiting, is what a sweep is short of.
		var emu *sim.Result
		var emuErr error
		emulated := make(chan struct{})
		emulate := func() {
			defer close(emulated)
			emu, emuErr = p.runOwn(ctx, emulation(c))
		}
		if !raceEnabled {
			go emulate()
		}
		var release func()
		n.Result, srv, release, err = p.reals.run(ctx, c, slot)
		if raceEnabled {
			emulate()
		}
		<-emulated
		defer release()
		if err == nil {
			n.Emulated, err = emu, emuErr
		}
	} else {
		n.Result, err = p.runOwn(ctx, c)
	}
	var stopped time.Time
	if p.stoppedAt != nil {
		stopped = p.stoppedAt()
	}
	switch {
	case ctx.Err() != nil && cutShort(n.Result, stopped):
		n.Cancelled, n.Why = true, "cancelled: the run was interrupted"
		if n.Result != nil {
			n.Result.Outcome = cancelled(n.Result, stopped)
			n.Result.Recovered = nil
		}
		return n
	case err != nil:
		n.Why = fmt.Sprintf("%s: %v", c.Source, err)
		return n
	}
	n.check()
	if !n.Pass && srv != nil {
		n.ServerLog = tail(srv.Log(), 400)
	}
	return n
}

// stopClock returns a function that says when ctx ended: the zero time
// until it does.
func stopClock(ctx context.Context) func() time.Time {
	var mu sync.Mutex
	var at time.Time
	context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		at = time.Now()
	})
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
}

// cutShort reports whether the interruption at stopped is what ended r:
// no result, or a failure that came after it (the deadline the
// interruption sets off, the connection it closes). A failure that came
// before it happened, and is kept.
func cutShort(r *sim.Result, stopped time.Time) bool {
	if r == nil {
		return true
	}
	if r.Outcome.OK() {
		return false
	}
	f := r.Outcome.Failure
	if f == nil || f.Condition == outcome.CancelledByCaller || stopped.IsZero() {
		return true
	}
	failedAt := r.At.Add(time.Duration(f.Elapsed) * time.Microsecond)
	return !failedAt.Before(stopped)
}

// cancelled is the outcome of r, cut short by the interruption at
// stopped: the step it was in, and nothing more.
func cancelled(r *sim.Result, stopped time.Time) outcome.Outcome {
	f := outcome.Failure{Condition: outcome.CancelledByCaller, Message: "the run was interrupted before this negotiation ended"}
	if g := r.Outcome.Failure; g != nil {
		f.During, f.Conn = g.Step, g.Conn
		if g.Step == outcome.StepTimeout || g.Condition == outcome.CancelledByCaller {
			f.During = g.During
		}
	}
	if !stopped.IsZero() && !r.At.IsZero() {
		f.Message = fmt.Sprintf("the run was interrupted %.1f ms into this negotiation, before it ended", float64(stopped.Sub(r.At).Microseconds())/1000)
		f.Elapsed = stopped.Sub(r.At).Microseconds()
	}
	return outcome.Failed(f)
}

// runOwn runs c between endpoints of the harness. The address book is
// rewritten for the case: only its listed endpoints are reachable, the
// later one of two nodes of a domain winning.
func (p *pool) runOwn(ctx context.Context, c *Case) (*sim.Result, error) {
	all := append([]Endpoint{c.Receiver, c.Initiator}, c.Others...)
	for _, e := range all {
		p.net.Unregister(e.Domain)
	}
	var init, recv *sim.Endpoint
	for i, e := range all {
		ep, err := p.endpoint(e)
		if err != nil {
			return nil, fmt.Errorf("cannot start endpoint %s: %w", e.Domain, err)
		}
		if !e.Unlisted {
			p.net.Register(e.Domain, ep.Addr())
			if d := ep.DirectAddr(); d != "" {
				p.net.RegisterDirectTLS(e.Domain, d)
			}
		}
		switch i {
		case 0:
			recv = ep
		case 1:
			init = ep
		}
	}
	if c.Proxy != "" {
		px, err := sim.StartProxy(recv.Addr(), c.Proxy)
		if err != nil {
			return nil, fmt.Errorf("cannot start the proxy: %w", err)
		}
		defer px.Close()
		p.net.Register(c.Receiver.Domain, px.Addr())
		defer p.net.Register(c.Receiver.Domain, recv.Addr())
	}
	return init.Initiate(ctx, c.Receiver.Domain), nil
}

// emulation is c with the real server replaced by an endpoint of the
// harness that plays the server's profile: its settings in the
// harness's vocabulary, behaviour included.
func emulation(c *Case) *Case {
	e := *c
	for _, ep := range []*Endpoint{&e.Initiator, &e.Receiver} {
		if ep.Server != nil {
			*ep = Endpoint{Domain: ep.Domain, Settings: ep.Settings, Timeout: serverPatience(c.otherTimeout(ep))}
		}
	}
	return &e
}

// serverPatience is how long the engine playing a real server waits,
// given the harness partner's timeout: longer, as the real servers do
// (the launchers set ejabberd's negotiation_timeout and
// outgoing_s2s_timeout and Prosody's s2s_timeout to 30 s, jabberd2's
// queue is 10 s; in the field Prosody's is 90 s), so that when both ends
// wait for something that never
// comes, the partner's deadline ends the negotiation with the real
// server and with its emulation alike. With equal deadlines the two
// raced: seen as "timeout by receiver" in one emulated run in 3150.
func serverPatience(partner time.Duration) time.Duration {
	if partner <= 0 {
		partner = sim.DefaultTimeout
	}
	return 2 * partner
}

// otherTimeout is the timeout of the end of c that is not ep.
func (c *Case) otherTimeout(ep *Endpoint) time.Duration {
	if ep == &c.Initiator {
		return c.Receiver.Timeout
	}
	return c.Initiator.Timeout
}

// invariants returns what the result shows that must never happen,
// whatever a faulty peer does: SASL offered or used on a plain stream
// (unless an end was told to misbehave that way, in which case the
// negotiation must fail), and dialback accepted before TLS by a receiver
// that requires TLS.
func invariants(c *Case, r *sim.Result) []string {
	var v []string
	for _, o := range r.Offers {
		if !o.TLS && len(o.Mechanisms) > 0 && !c.Receiver.Faults.Has(sim.OfferSASLPlain) {
			v = append(v, "SASL offered on a plain stream")
		}
	}
	for _, e := range r.Transcript {
		if e.TLS {
			continue
		}
		fromInit := strings.HasPrefix(e.From, outcome.Initiator.String())
		fromRecv := strings.HasPrefix(e.From, outcome.Receiver.String()) && e.Conn == "main"
		switch {
		case fromRecv && strings.Contains(e.XML, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"):
			v = append(v, "SASL success on a plain stream")
		case fromInit && strings.Contains(e.XML, "<auth ") && !c.Initiator.Faults.Has(sim.AuthBeforeTLS):
			v = append(v, "SASL <auth/> sent on a plain stream")
		case fromRecv && strings.Contains(e.XML, "<db:result") && strings.Contains(e.XML, "type='valid'") &&
			c.Receiver.Settings.TLS == policy.Required:
			v = append(v, "dialback accepted before TLS by a receiver that requires TLS")
		}
	}
	return v
}

// expect sets what the negotiation is expected to come to: as written,
// or as the oracle predicts from both ends' settings.
func (n *Negotiation) expect() {
	c := n.Case
	n.Expected = c.Expect.Want
	if c.Expect.Oracle == Predicted || c.Expect.Oracle == PredictedOutcome {
		p := policy.Predict(c.Initiator.Settings, c.Receiver.Settings)
		n.Prediction, n.Expected = &p, p.Outcome
	}
}

// check compares the result with the expectation.
func (n *Negotiation) check() {
	c, got := n.Case, n.Observed()
	if c.Expect.Oracle == Unchecked {
		n.Pass = true
		return
	}
	want := n.Expected
	if c.Expect.Oracle == PredictedOutcome && !want.OK() {
		want = outcome.AnyFailure()
	}
	n.Pass = got.Match(want)
	switch {
	case !n.Pass && c.Expect.Oracle != NoOracle:
		n.Why = fmt.Sprintf("oracle predicted %s, observed %s", n.Expected, got)
	case !n.Pass:
		n.Why = fmt.Sprintf("expected %s, observed %s", n.Expected, got)
	case !got.Match(n.Expected):
		n.Note = fmt.Sprintf("both fail, differently: predicted %s, observed %s", n.Expected, got)
	}
	if r := c.Expect.Reason; n.Pass && r != "" && got.Failure != nil {
		if msg := got.Failure.Message; !strings.Contains(strings.ToLower(msg), strings.ToLower(r)) {
			n.Pass = false
			n.Why = fmt.Sprintf("expected the failure to say %q; it said %q", r, msg)
		}
	}
	if n.Emulated != nil {
		if emu := n.Emulated.Outcome; !emu.Match(want) {
			real, _ := c.real()
			n.Pass = false
			why := fmt.Sprintf("the engine playing %s's profile came to %s, predicted %s", real.Server.Kind(), emu, n.Expected)
			if n.Why == "" {
				n.Why = why
			} else {
				n.Why += "; " + why
			}
		}
	}
	if v := invariants(c, n.Result); len(v) > 0 {
		n.Pass = false
		n.Why = strings.Join(v, "; ")
	}
}

// Execute runs suites with opt and builds the report, with the rows of
// the sweeps that compare with the documented matrix. A suite given
// twice (by name, or by two files with the same suite:) is an error:
// its negotiations would have the same ids.
func Execute(ctx context.Context, suites []*Suite, opt Options) (*Report, error) {
	files := map[string]string{}
	for _, s := range suites {
		if prev, ok := files[s.Name]; ok {
			if prev == s.File {
				return nil, fmt.Errorf("suite %q (%s) is given twice: its negotiations would have the same ids", s.Name, s.File)
			}
			return nil, fmt.Errorf("suite %q is declared by both %s and %s: its negotiations would have the same ids", s.Name, prev, s.File)
		}
		files[s.Name] = s.File
	}
	var all []*Case
	for _, s := range suites {
		all = append(all, s.Cases...)
	}
	cases := Select(all, opt)
	start := time.Now()
	ran := Run(ctx, cases, opt)
	rep := &Report{Suites: suites, Negotiations: ran, Duration: time.Since(start), Repeat: max(opt.Repeat, 1),
		Selected: len(cases), Interrupted: ctx.Err() != nil}
	if len(ran) < len(cases) {
		started := map[*Case]bool{}
		for _, n := range ran {
			started[n.Case] = true
		}
		for _, c := range cases {
			if !started[c] {
				rep.NotRun = append(rep.NotRun, c)
			}
		}
	}
	if opt.Shards > 1 {
		rep.Shard, rep.Shards = opt.Shard, opt.Shards
	}
	if opt.Filter != nil {
		rep.Filter = opt.Filter.String()
	}
	rep.compareRows(all, cases)
	return rep, nil
}

// compareRows compares with the matrix the rows of the report's sweeps
// whose negotiations all ran (of all declared, cases selected).
func (rep *Report) compareRows(all, cases []*Case) {
	ran := rep.Negotiations
	suites := rep.Suites
	if !rep.Complete() {
		// A row compared with only some of its negotiations would
		// disagree for no reason.
		return
	}
	// A row is compared with the matrix only when all its negotiations
	// ran: against some partners only, it would disagree for no reason.
	count := func(cs []*Case) map[[3]string]int {
		m := map[[3]string]int{}
		for _, c := range cs {
			m[[3]string{c.Suite, c.Sweep, c.Row}]++
		}
		return m
	}
	declared, selected := count(all), count(cases)
	for _, s := range suites {
		for _, sw := range s.Sweeps {
			if !sw.CompareRows {
				continue
			}
			complete := sw
			complete.Rows = nil
			for _, row := range sw.Rows {
				k := [3]string{sw.Suite, sw.Name, row}
				if declared[k] == selected[k] {
					complete.Rows = append(complete.Rows, row)
				}
			}
			rep.Rows = append(rep.Rows, CompareRows(complete, ran)...)
		}
	}
	if len(rep.Rows) > 0 {
		rep.Inconsistencies = Inconsistencies(rep.Rows)
	}
}
