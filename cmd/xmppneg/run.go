package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"xmppneg/policy/report"
	"xmppneg/policy/safefile"
	"xmppneg/scenarios"
)

func init() {
	register(&command{
		name:    "verify",
		summary: "Verify the documented Lync 2013 full matrix with real negotiations (the lync2013 suite): documented and observed methods per row.",
		usage:   "[-o " + verifyWriters.Usage() + "] [-j N] [--repeat N] [--out DIR]",
		example: "xmppneg verify\nxmppneg verify -o json | jq '.rows[] | {row, agree}'\nxmppneg verify --repeat 50",
		setup:   setupVerify,
	})
	register(&command{
		name:    "run",
		summary: "Run scenario suites (shipped: " + strings.Join(scenarios.Suites(), ", ") + ") or scenario files, observed against expected.",
		usage:   "SUITE|FILE... [-o " + scenarios.Writers.Usage() + "] [--out DIR] [-j N] [--run REGEXP] [--shard I/N] [--repeat N] [--timeout D] [-v]",
		example: "xmppneg run failures\nxmppneg run pairwise -o html --out report/\nxmppneg run lync2013 --run 'M7/' -v\n" +
			"xmppneg run interop-prosody -o junit --out ci-report/\nxmppneg run my-partners.yaml -o jsonl | jq -c 'select(.pass == false)'",
		setup: setupRun,
	})
}

// runFlags are the flags shared by verify and run.
type runFlags struct {
	jobs     *int
	repeat   *int
	out      *string
	maxInput *sizeFlag
}

func defineRunFlags(fs *flag.FlagSet) runFlags {
	maxInput := sizeFlag(scenarios.MaxSuiteBytes)
	fs.Var(&maxInput, "max-input", "the largest scenario file read, such as 16MiB or 64MiB")
	return runFlags{
		jobs:     fs.Int("j", runtime.NumCPU(), "run `N` negotiations at once (default: one per CPU)"),
		repeat:   fs.Int("repeat", 1, "run every negotiation N times and report any that ends differently (flake hunting)"),
		out:      fs.String("out", "", "`directory` for the report file and one transcript per negotiation"),
		maxInput: &maxInput,
	}
}

// sizeFlag is a number of bytes, written 64MiB, 512KiB or 1048576.
type sizeFlag int64

func (s *sizeFlag) String() string { return safefile.Size(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > (1<<40)/mult {
		return fmt.Errorf("%q is not a size such as 64MiB, 512KiB or 1048576", v)
	}
	*s = sizeFlag(n * mult)
	return nil
}

func (f runFlags) options(e *env) (scenarios.Options, bool) {
	if *f.jobs < 1 {
		e.errorf("-j must be at least 1")
		return scenarios.Options{}, false
	}
	if *f.repeat < 1 {
		e.errorf("--repeat must be at least 1")
		return scenarios.Options{}, false
	}
	if *f.out != "" {
		if err := writable(*f.out); err != nil {
			e.errorf("--out %s: %v", *f.out, err)
			return scenarios.Options{}, false
		}
	}
	opt := scenarios.Options{Jobs: *f.jobs, Repeat: *f.repeat}
	if isTerminal(e.stderr) {
		opt.Progress = func(done, total int) {
			if done%25 == 0 || done == total {
				fmt.Fprintf(e.stderr, "\r%d/%d negotiations", done, total)
				if done == total {
					fmt.Fprint(e.stderr, "\r\x1b[K")
				}
			}
		}
	}
	return opt, true
}

// writable checks, before anything runs, that dir can take the report
// and the transcripts: discovering it after thousands of negotiations
// would throw them away.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create it: %w", unwrapPath(err))
	}
	// transcripts must be a directory of ours: a link placed there
	// would send every transcript elsewhere.
	td, err := safefile.Dir(dir, "transcripts", 0o755)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(td, ".xmppneg-check-*")
	if err != nil {
		return fmt.Errorf("cannot write there: %w", unwrapPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// interruptible returns a context that ends on SIGINT or SIGTERM: a run
// then stops starting negotiations, cuts short the ones under way and
// reports what it has.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// execute runs suites; with outDir set, each negotiation's transcript is
// written as soon as it is done (each, when set, sees it after that).
func execute(ctx context.Context, e *env, suites []*scenarios.Suite, opt scenarios.Options, outDir string, each func(*scenarios.Negotiation) error) (*scenarios.Report, bool) {
	var writeErr error
	opt.Each = func(n *scenarios.Negotiation) {
		if writeErr != nil {
			return
		}
		if outDir != "" {
			writeErr = scenarios.WriteTranscript(outDir, n)
		}
		if each != nil && writeErr == nil {
			writeErr = each(n)
		}
	}
	rep, err := scenarios.Execute(ctx, suites, opt)
	if err != nil {
		e.errorf("%v", err)
		return nil, false
	}
	if writeErr != nil {
		e.errorf("writing the report: %v", writeErr)
		return rep, false
	}
	return rep, true
}

// reportExt is the extension of the report file of format in --out.
func reportExt(format string) string { return report.Ext(format) }

// verifyStyle is what verify's text takes: the suite report's style, and
// the --out directory its transcripts went to.
type verifyStyle struct {
	scenarios.Style
	outDir string
}

// verifyWriters are verify's: its own text (the rows against the
// documented matrix, and the verdict), and the suite report's JSON.
var verifyWriters = report.Writers[*scenarios.Report, verifyStyle]{
	{Format: report.Text, Write: func(w io.Writer, r *scenarios.Report, st verifyStyle) error {
		writeVerifyText(w, r, st.Style, st.outDir)
		return nil
	}},
	{Format: report.JSON, Write: func(w io.Writer, r *scenarios.Report, _ verifyStyle) error { return scenarios.WriteJSON(w, r) }},
}

func (e *env) style(verbose bool) scenarios.Style {
	return scenarios.Style{Color: e.color, Verbose: verbose}
}

func setupVerify(fs *flag.FlagSet, e *env) func([]string) int {
	rf := defineRunFlags(fs)
	out := outputFlag(fs, verifyWriters.Formats()...)
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		opt, ok := rf.options(e)
		if !ok {
			return exitUsage
		}
		suite, err := scenarios.Load("lync2013")
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		ctx, stop := interruptible()
		defer stop()
		rep, ok := execute(ctx, e, []*scenarios.Suite{suite}, opt, *rf.out, nil)
		if !ok {
			return exitFail
		}
		code := exitOK
		switch {
		case rep.Interrupted:
			code = exitInterrupted
		case !rep.Passed() || len(rep.Rows) == 0:
			code = exitFail
		}
		if *rf.out != "" {
			// The report in its format goes to the directory, as with run;
			// the console still shows the verdict.
			file := filepath.Join(*rf.out, "report."+reportExt(*out))
			f, err := safefile.Create(file, 0o644)
			if err == nil {
				err = verifyWriters.Write(f, *out, rep, verifyStyle{outDir: *rf.out})
				if err == nil {
					err = f.Commit()
				}
				f.Discard()
			}
			if err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
			fmt.Fprintf(e.stdout, "wrote %s and %s in %s\n", file, scenarios.Counted(len(rep.Negotiations), "transcript"), filepath.Join(*rf.out, "transcripts"))
			writeVerifyText(e.stdout, rep, e.style(false), *rf.out)
			return code
		}
		if err := verifyWriters.Write(e.stdout, *out, rep, verifyStyle{Style: e.style(false)}); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		return code
	}
}

// writeVerifyText is verify's text report: the rows against the
// documented matrix, the oracle's count, and the verdict.
func writeVerifyText(w io.Writer, rep *scenarios.Report, st scenarios.Style, outDir string) {
	s := rep.Summary()
	if rep.Interrupted {
		scenarios.WriteSummary(w, rep, st)
		return
	}
	fmt.Fprintln(w, st.Paint("bold", fmt.Sprintf("Lync Server 2013 full matrix, verified with %d real negotiations (each row against all 18 partner settings, both directions)", s.Runs)))
	fmt.Fprintln(w)
	scenarios.WriteRows(w, rep)
	fmt.Fprintf(w, "\nOracle: %d of %d negotiations as predicted.\n", s.Passed, s.Negotiations)
	for _, n := range rep.Negotiations {
		if !n.Pass {
			fmt.Fprintf(w, "  %s: %s\n", n.Case.ID, n.Why)
		}
	}
	if s.Repeat > 1 {
		fmt.Fprintf(w, "Repeated %d times: %d negotiations ended differently between runs.\n", s.Repeat, s.Unstable)
	}
	if outDir != "" {
		fmt.Fprintf(w, "Transcripts: %s\n", filepath.Join(outDir, "transcripts"))
	}
	summary := fmt.Sprintf("%d of %d rows agree with the full matrix (%s in %.2f s)",
		s.RowsAgree, s.Rows, scenarios.Counted(s.Runs, "negotiation"), rep.Duration.Seconds())
	if rep.Passed() && len(rep.Rows) > 0 {
		fmt.Fprintln(w, st.Paint("green", "OK: "+summary))
	} else {
		fmt.Fprintln(w, st.Paint("red", "FAILED: "+summary))
	}
}

func setupRun(fs *flag.FlagSet, e *env) func([]string) int {
	rf := defineRunFlags(fs)
	out := outputFlag(fs, scenarios.Writers.Formats()...)
	filter := fs.String("run", "", "only negotiations whose id matches this `regexp`")
	shard := fs.String("shard", "", "`I/N`: run only the I-th of N interleaved parts (for parallel CI jobs)")
	verbose := fs.Bool("v", false, "list every negotiation with its failure and its transcript (the transcript file's path with --out)")
	timeout := fs.Duration("timeout", 0, "deadline of each negotiation of an endpoint whose scenario sets none with timeout: (default 5s)")
	return func(args []string) int {
		if *timeout < 0 {
			e.errorf("--timeout must be positive")
			return exitUsage
		}
		if len(args) == 0 {
			e.errorf("name at least one suite (%s) or scenario file", strings.Join(scenarios.Suites(), ", "))
			return exitUsage
		}
		opt, ok := rf.options(e)
		if !ok {
			return exitUsage
		}
		// -v prints every transcript; otherwise only those of what did
		// not pass are kept (files are written as each ends).
		opt.KeepTranscripts = *verbose
		if *filter != "" {
			re, err := regexp.Compile(*filter)
			if err != nil {
				e.errorf("--run: %v", err)
				return exitUsage
			}
			opt.Filter = re
		}
		if *shard != "" {
			i, n, err := parseShard(*shard)
			if err != nil {
				e.errorf("--shard: %v", err)
				return exitUsage
			}
			opt.Shard, opt.Shards = i, n
		} else if i, n, ok, err := shardFromEnv(); err != nil {
			e.errorf("%v", err)
			return exitUsage
		} else if ok {
			opt.Shard, opt.Shards = i, n
			*shard = fmt.Sprintf("%d/%d", i, n)
		}
		var suites []*scenarios.Suite
		for _, a := range args {
			s, err := scenarios.LoadLimited(a, int64(*rf.maxInput))
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			suites = append(suites, s)
		}
		var all []*scenarios.Case
		for _, s := range suites {
			all = append(all, s.Cases...)
		}
		if *timeout > 0 {
			scenarios.SetDefaultTimeout(all, *timeout)
		}
		unsharded := opt
		unsharded.Shard, unsharded.Shards = 0, 0
		// More shards than negotiations leaves some shards empty: an
		// empty report, which merge takes with the others. Only a
		// filter that selects nothing at all is a mistake.
		if len(scenarios.Select(all, unsharded)) == 0 {
			var by []string
			if *filter != "" {
				by = append(by, fmt.Sprintf("--run %q", *filter))
			}
			if *shard != "" {
				by = append(by, fmt.Sprintf("--shard %s", *shard))
			}
			if len(all) == 0 {
				e.errorf("the suites given declare no negotiation")
			} else {
				e.errorf("no negotiation of %d matches %s (ids look like %s)", len(all), strings.Join(by, " and "), all[0].ID)
			}
			return exitUsage
		}

		// JSON Lines: each negotiation goes out as it ends, the summary last.
		streaming := report.Format(*out) == report.JSONL
		w, file := io.Writer(e.stdout), ""
		var report *safefile.File
		if *rf.out != "" {
			file = filepath.Join(*rf.out, "report."+reportExt(*out))
			// A fresh file renamed into place at the end: a link placed
			// at report.html is replaced, never written through.
			f, err := safefile.Create(file, 0o644)
			if err != nil {
				e.errorf("--out: %v", err)
				return exitUsage
			}
			defer f.Discard()
			w = f
			report = f
		}
		var each func(*scenarios.Negotiation) error
		if streaming {
			each = func(n *scenarios.Negotiation) error { return scenarios.WriteJSONLine(w, n) }
		}
		ctx, stop := interruptible()
		defer stop()
		rep, ok := execute(ctx, e, suites, opt, *rf.out, each)
		if rep == nil {
			return exitUsage
		}
		if !ok {
			return exitFail
		}
		style := e.style(*verbose)
		if file != "" {
			style.Color = false
		}
		if err := scenarios.Writers.Write(w, *out, rep, style); err != nil {
			e.errorf("writing the report: %v", err)
			return exitFail
		}
		if report != nil {
			if err := report.Commit(); err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
		}
		if file != "" {
			// The report went to a file: what did not pass is still shown here.
			fmt.Fprintf(e.stdout, "wrote %s and %s in %s\n", file, scenarios.Counted(len(rep.Negotiations), "transcript"), filepath.Join(*rf.out, "transcripts"))
			console := e.style(*verbose)
			console.FailuresOnly = true
			scenarios.WriteText(e.stdout, rep, console)
		} else if *out != "table" && rep.Interrupted {
			scenarios.WriteSummary(e.stderr, rep, e.style(false))
		}
		return reportExit(rep)
	}
}

// reportExit is the exit code of a run's report: interrupted (130),
// something not as expected (1), or all as expected (0).
func reportExit(rep *scenarios.Report) int {
	switch {
	case rep.Interrupted:
		return exitInterrupted
	case !rep.Passed():
		return exitFail
	}
	return exitOK
}

// shardFromEnv reads the sharding convention of Bazel and BoGo:
// TEST_TOTAL_SHARDS and TEST_SHARD_INDEX (from 0), and touches
// TEST_SHARD_STATUS_FILE to say that sharding is honoured.
func shardFromEnv() (index, total int, ok bool, err error) {
	t, set := os.LookupEnv("TEST_TOTAL_SHARDS")
	if !set || t == "" {
		return 0, 0, false, nil
	}
	total, err1 := strconv.Atoi(t)
	idx, err2 := strconv.Atoi(os.Getenv("TEST_SHARD_INDEX"))
	if err1 != nil || err2 != nil || total < 1 || idx < 0 || idx >= total {
		return 0, 0, false, fmt.Errorf("TEST_TOTAL_SHARDS=%q and TEST_SHARD_INDEX=%q: give a number of shards and an index from 0 below it", t, os.Getenv("TEST_SHARD_INDEX"))
	}
	if f := os.Getenv("TEST_SHARD_STATUS_FILE"); f != "" {
		if err := touch(f); err != nil {
			return 0, 0, false, fmt.Errorf("TEST_SHARD_STATUS_FILE: %v", err)
		}
	}
	return idx + 1, total, true, nil
}

// touch creates path or updates its time, as touch(1) does: the
// convention says touch, and a file that exists keeps what it holds.
func touch(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	now := time.Now()
	return os.Chtimes(path, now, now)
}

func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, fmt.Errorf("%q is not I/N with 1 <= I <= N", s)
	}
	return i, n, nil
}
