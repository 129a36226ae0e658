package scenarios

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
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
			for j := range work {
				o := RunCase(ctx, cases[j.i])
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
	o := &Outcome{Case: c}
	n := sim.NewNetwork()
	var eps []*sim.Endpoint
	defer func() {
		for _, e := range eps {
			e.Close()
		}
	}()
	start := func(e Endpoint) (*sim.Endpoint, error) {
		ep, err := sim.NewEndpoint(sim.Config{Domain: e.Domain, Settings: e.Settings, Net: n, Unlisted: e.Unlisted,
			Timeout: e.Timeout, Faults: sim.Faults{SilentAt: e.SilentAt}})
		if err != nil {
			return nil, err
		}
		if err := ep.Start(); err != nil {
			return nil, err
		}
		eps = append(eps, ep)
		return ep, nil
	}
	var init *sim.Endpoint
	for i, e := range append([]Endpoint{c.Receiver, c.Initiator}, c.Others...) {
		ep, err := start(e)
		if err != nil {
			o.Why = fmt.Sprintf("%s: cannot start endpoint %s: %v", c.Source, e.Domain, err)
			return o
		}
		if i == 1 {
			init = ep
		}
	}
	o.Result = init.Initiate(ctx, c.Receiver.Domain)
	o.check()
	return o
}

// check compares the result with the expectation.
func (o *Outcome) check() {
	r, e := o.Result, o.Case.Expect
	got := sig(r)
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
	for _, s := range suites {
		for _, sw := range s.Sweeps {
			if sw.CompareRows {
				rep.Rows = append(rep.Rows, CompareRows(sw, outcomes)...)
			}
		}
	}
	return rep
}
