package scenarios

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"xmppneg/policy"
	"xmppneg/sim"
)

// Outcome is what running one case came to.
type Outcome struct {
	Case       *Case              `json:"case"`
	Result     *sim.Result        `json:"result"`
	Prediction *policy.Prediction `json:"prediction,omitempty"`
	Pass       bool               `json:"pass"`
	// Why says how the result differs from the expectation.
	Why string `json:"why,omitempty"`
	// Unstable is set when --repeat saw this case end differently.
	Unstable []string `json:"unstable,omitempty"`
	// Transcript is the path of the transcript file, when one was written.
	Transcript string `json:"transcript,omitempty"`
}

// Options tune a run.
type Options struct {
	Jobs   int            // workers; 0 means the number of CPUs
	Filter *regexp.Regexp // only cases whose id matches
	Shard  int            // 1-based shard to run, with Shards
	Shards int
	Repeat int // run every case this many times; 0 means once
	// Progress, when set, is called after each case with the count done.
	Progress func(done, total int)
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

// Run runs the cases on a pool of workers. Outcomes come back in the
// order of the cases, whatever order they finished in.
func Run(ctx context.Context, cases []*Case, opt Options) []*Outcome {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	repeat := max(opt.Repeat, 1)
	out := make([]*Outcome, len(cases))
	type job struct{ i, rep int }
	work := make(chan job)
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPool()
			defer p.close()
			for j := range work {
				o := p.run(ctx, cases[j.i])
				mu.Lock()
				if prev := out[j.i]; prev == nil {
					out[j.i] = o
				} else if sig(prev.Result) != sig(o.Result) {
					prev.Unstable = append(prev.Unstable, fmt.Sprintf("run %d: %s", j.rep+1, sig(o.Result)))
					prev.Pass = false
					prev.Why = fmt.Sprintf("unstable across %d runs: first %s", repeat, sig(prev.Result))
				}
				done++
				if opt.Progress != nil {
					opt.Progress(done, len(cases)*repeat)
				}
				mu.Unlock()
			}
		}()
	}
	for rep := 0; rep < repeat; rep++ {
		for i := range cases {
			select {
			case work <- job{i, rep}:
			case <-ctx.Done():
			}
		}
	}
	close(work)
	wg.Wait()
	for i, o := range out {
		if o == nil {
			out[i] = &Outcome{Case: cases[i], Why: "not run: " + fmt.Sprint(ctx.Err())}
		}
	}
	return out
}

// sig is what must not change between repeats of a case.
func sig(r *sim.Result) string {
	if r == nil {
		return "not run"
	}
	if r.Failure != nil {
		return fmt.Sprintf("failed at %s (%s by %s)", r.Failure.Step, r.Failure.Condition, r.Failure.By)
	}
	return r.Outcome
}

// RunCase starts the endpoints of c on a network of their own, runs the
// negotiation and checks it against the expectation.
func RunCase(ctx context.Context, c *Case) *Outcome {
	p := newPool()
	defer p.close()
	return p.run(ctx, c)
}

// pool keeps the endpoints a worker has started, on a network of the
// worker's own, so that a sweep of thousands of negotiations does not open
// and close thousands of listeners: each closed socket leaves a TIME_WAIT
// entry behind, and enough of them slow the kernel's choice of a free
// port for every later listener.
type pool struct {
	net *sim.Network
	eps map[string]*sim.Endpoint
}

func newPool() *pool { return &pool{net: sim.NewNetwork(), eps: map[string]*sim.Endpoint{}} }

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
	ep, err := sim.NewEndpoint(sim.Config{Domain: e.Domain, Settings: e.Settings, Net: p.net, Unlisted: true,
		Timeout: e.Timeout, Faults: e.Faults, RecordReads: e.RecordReads, Limits: sim.Limits{MaxElementBytes: e.MaxElementBytes}})
	if err != nil {
		return nil, err
	}
	if err := ep.Start(); err != nil {
		return nil, err
	}
	p.eps[key] = ep
	return ep, nil
}

// run runs c with the pool's endpoints. The address book is rewritten for
// the case: only its listed endpoints are reachable, the later one of two
// nodes of a domain winning.
func (p *pool) run(ctx context.Context, c *Case) *Outcome {
	o := &Outcome{Case: c}
	all := append([]Endpoint{c.Receiver, c.Initiator}, c.Others...)
	for _, e := range all {
		p.net.Unregister(e.Domain)
	}
	var init, recv *sim.Endpoint
	for i, e := range all {
		ep, err := p.endpoint(e)
		if err != nil {
			o.Why = fmt.Sprintf("%s: cannot start endpoint %s: %v", c.Source, e.Domain, err)
			return o
		}
		if !e.Unlisted {
			p.net.Register(e.Domain, ep.Addr())
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
			o.Why = fmt.Sprintf("%s: cannot start the proxy: %v", c.Source, err)
			return o
		}
		defer px.Close()
		p.net.Register(c.Receiver.Domain, px.Addr())
		defer p.net.Register(c.Receiver.Domain, recv.Addr())
	}
	o.Result = init.Initiate(ctx, c.Receiver.Domain)
	o.check()
	return o
}

// invariants returns what the transcript shows that must never happen,
// whatever a faulty peer does: SASL on a plain stream (unless the
// initiator was told to misbehave that way, in which case it must fail),
// and dialback accepted before TLS by a receiver that requires TLS.
func invariants(c *Case, r *sim.Result) []string {
	var v []string
	for _, e := range r.Transcript {
		if e.TLS {
			continue
		}
		fromInit := strings.HasPrefix(e.From, string(sim.Initiator))
		fromRecv := strings.HasPrefix(e.From, string(sim.Receiver)) && e.Conn == "main"
		switch {
		case fromRecv && strings.Contains(e.XML, "<success xmlns='"+"urn:ietf:params:xml:ns:xmpp-sasl'"):
			v = append(v, "SASL success on a plain stream")
		case fromInit && strings.Contains(e.XML, "<auth ") && !c.Initiator.Faults.Has(sim.AuthBeforeTLS):
			v = append(v, "SASL <auth/> sent on a plain stream")
		case fromRecv && strings.Contains(e.XML, "<mechanisms") && !c.Receiver.Faults.Has(sim.OfferSASLPlain):
			v = append(v, "SASL offered on a plain stream")
		case fromRecv && strings.Contains(e.XML, "<db:result") && strings.Contains(e.XML, "type='valid'") &&
			c.Receiver.Settings.TLS == policy.Required:
			v = append(v, "dialback accepted before TLS by a receiver that requires TLS")
		}
	}
	return v
}

// check compares the result with the expectation.
func (o *Outcome) check() {
	r, e := o.Result, o.Case.Expect
	got := sig(r)
	defer func() {
		if v := invariants(o.Case, r); len(v) > 0 {
			o.Pass = false
			o.Why = strings.Join(v, "; ")
		}
	}()
	switch {
	case e.Predicted:
		p := policy.Predict(o.Case.Initiator.Settings, o.Case.Receiver.Settings)
		o.Prediction = &p
		want := p.Outcome
		if p.Outcome == sim.Failed {
			want = fmt.Sprintf("failed at %s (%s by %s)", p.Step, p.Condition, p.By)
		}
		o.Pass = got == want
		if !o.Pass {
			o.Why = fmt.Sprintf("oracle predicted %s, observed %s", want, got)
		}
	case e.Method != "":
		o.Pass = r.Outcome == string(e.Method)
		if !o.Pass {
			o.Why = fmt.Sprintf("expected %s, observed %s", e.Method.Name(), got)
		}
	default:
		f := r.Failure
		o.Pass = f != nil && (e.Step == "" || e.Step == string(f.Step)) &&
			(e.Condition == "" || e.Condition == f.Condition) && (e.By == "" || e.By == string(f.By))
		if !o.Pass {
			o.Why = fmt.Sprintf("expected %s, observed %s", e, got)
		}
	}
}

// Expected is the expectation written out for a report.
func (o *Outcome) Expected() string {
	if o.Prediction != nil {
		if o.Prediction.Outcome == sim.Failed {
			return fmt.Sprintf("failed at %s (%s by %s)", o.Prediction.Step, o.Prediction.Condition, o.Prediction.By)
		}
		return o.Prediction.Outcome
	}
	return o.Case.Expect.String()
}

// Observed is the result written out for a report.
func (o *Outcome) Observed() string { return sig(o.Result) }

// Report is the whole of a run.
type Report struct {
	Suites   []*Suite      `json:"-"`
	Outcomes []*Outcome    `json:"-"`
	Rows     []RowCheck    `json:"rows,omitempty"`
	Duration time.Duration `json:"-"`
}

// Passed reports whether every case met its expectation and every row
// compared with the matrix agreed.
func (r *Report) Passed() bool {
	for _, o := range r.Outcomes {
		if !o.Pass {
			return false
		}
	}
	for _, row := range r.Rows {
		if !row.Agree {
			return false
		}
	}
	return true
}

// Counts returns how many cases passed and failed.
func (r *Report) Counts() (passed, failed int) {
	for _, o := range r.Outcomes {
		if o.Pass {
			passed++
		} else {
			failed++
		}
	}
	return
}

// Execute runs suites with opt and builds the report, with the rows of
// the sweeps that compare with the documented matrix.
func Execute(ctx context.Context, suites []*Suite, opt Options) *Report {
	var cases []*Case
	for _, s := range suites {
		cases = append(cases, s.Cases...)
	}
	cases = Select(cases, opt)
	start := time.Now()
	outcomes := Run(ctx, cases, opt)
	rep := &Report{Suites: suites, Outcomes: outcomes, Duration: time.Since(start)}
	// A row is compared with the matrix only when all its negotiations
	// ran: against some partners only, it would disagree for no reason.
	count := func(cs []*Case) map[[3]string]int {
		m := map[[3]string]int{}
		for _, c := range cs {
			m[[3]string{c.Suite, c.Sweep, c.Row}]++
		}
		return m
	}
	var all []*Case
	for _, s := range suites {
		all = append(all, s.Cases...)
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
			rep.Rows = append(rep.Rows, CompareRows(complete, outcomes)...)
		}
	}
	return rep
}
