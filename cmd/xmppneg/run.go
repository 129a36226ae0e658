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

	"xmppneg/scenarios"
)

func init() {
	register(&command{
		name:    "verify",
		summary: "Verify the documented Lync 2013 full matrix with real negotiations (the lync2013 suite): documented and observed methods per row.",
		usage:   "[-o text|json] [-j N] [--repeat N] [--out DIR]",
		example: "xmppneg verify\nxmppneg verify -o json | jq '.rows[] | {row, agree}'\nxmppneg verify --repeat 50",
		setup:   setupVerify,
	})
	register(&command{
		name:    "run",
		summary: "Run scenario suites (shipped: " + strings.Join(scenarios.Suites(), ", ") + ", and against real servers: " + strings.Join(interopSuites, ", ") + ") or scenario files, observed against expected.",
		usage:   "SUITE|FILE... [-o table|json|junit|html] [--out DIR] [-j N] [--run REGEXP] [--shard I/N] [--repeat N] [-v]",
		example: "xmppneg run failures\nxmppneg run pairwise -o html --out report/\nxmppneg run lync2013 --run 'M7/' -v\nxmppneg run my-partners.yaml -o junit --out ci-report/",
		setup:   setupRun,
	})
}

// runFlags are the flags shared by verify and run.
type runFlags struct {
	jobs   *int
	repeat *int
	out    *string
}

func defineRunFlags(fs *flag.FlagSet) runFlags {
	return runFlags{
		jobs:   fs.Int("j", runtime.NumCPU(), "negotiations run at once"),
		repeat: fs.Int("repeat", 1, "run every negotiation N times and report any that ends differently (flake hunting)"),
		out:    fs.String("out", "", "directory for the report file and one transcript per negotiation"),
	}
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func setupVerify(fs *flag.FlagSet, e *env) func([]string) int {
	rf := defineRunFlags(fs)
	out := outputFlag(fs, "text", "json")
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
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		rep := scenarios.Execute(ctx, []*scenarios.Suite{suite}, opt)
		if *rf.out != "" {
			if err := scenarios.WriteTranscripts(*rf.out, rep.Outcomes); err != nil {
				e.errorf("writing transcripts: %v", err)
				return exitFail
			}
		}
		agree, unstable, asPredicted := 0, 0, 0
		for _, rc := range rep.Rows {
			if rc.Agree {
				agree++
			}
		}
		for _, o := range rep.Outcomes {
			if len(o.Unstable) > 0 {
				unstable++
			}
			if o.Pass {
				asPredicted++
			}
		}
		code := exitOK
		if agree != len(rep.Rows) || unstable > 0 || len(rep.Rows) == 0 {
			code = exitFail
		}
		if *out == "json" {
			writeJSON(e.stdout, map[string]any{
				"rows": rep.Rows, "inconsistencies": scenarios.Inconsistencies(rep.Rows),
				"negotiations": len(rep.Outcomes) * *rf.repeat, "duration_ms": rep.Duration.Milliseconds(),
				"oracle":   map[string]int{"as_predicted": asPredicted, "total": len(rep.Outcomes)},
				"unstable": unstable, "ok": code == exitOK,
			})
			return code
		}
		fmt.Fprintln(e.stdout, e.paint("bold", fmt.Sprintf("Lync Server 2013 full matrix, verified with %d real negotiations (each row against all 18 partner settings, both directions)",
			len(rep.Outcomes)**rf.repeat)))
		fmt.Fprintln(e.stdout)
		scenarios.WriteRows(e.stdout, rep.Rows)
		fmt.Fprintf(e.stdout, "\nOracle: %d of %d negotiations as predicted.\n", asPredicted, len(rep.Outcomes))
		if *rf.repeat > 1 {
			fmt.Fprintf(e.stdout, "Repeated %d times: %d negotiations ended differently between runs.\n", *rf.repeat, unstable)
		}
		if *rf.out != "" {
			fmt.Fprintf(e.stdout, "Transcripts: %s\n", filepath.Join(*rf.out, "transcripts"))
		}
		summary := fmt.Sprintf("%d of %d rows agree with the full matrix (%d negotiations in %.2f s)",
			agree, len(rep.Rows), len(rep.Outcomes)**rf.repeat, rep.Duration.Seconds())
		if code == exitOK {
			fmt.Fprintln(e.stdout, e.paint("green", "OK: "+summary))
		} else {
			fmt.Fprintln(e.stdout, e.paint("red", "FAILED: "+summary))
		}
		return code
	}
}

func setupRun(fs *flag.FlagSet, e *env) func([]string) int {
	rf := defineRunFlags(fs)
	out := outputFlag(fs, "table", "json", "junit", "html")
	filter := fs.String("run", "", "only negotiations whose id matches this regular expression")
	shard := fs.String("shard", "", "I/N: run only the I-th of N interleaved parts (for parallel CI jobs)")
	verbose := fs.Bool("v", false, "list every negotiation, with its failure and transcript")
	return func(args []string) int {
		if len(args) == 0 {
			e.errorf("name at least one suite (%s) or scenario file", strings.Join(scenarios.Suites(), ", "))
			return exitUsage
		}
		opt, ok := rf.options(e)
		if !ok {
			return exitUsage
		}
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
		}
		if isInterop(args[0]) {
			return runInterop(e, args, *out, *rf.out)
		}
		var suites []*scenarios.Suite
		for _, a := range args {
			s, err := scenarios.Load(a)
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			suites = append(suites, s)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		rep := scenarios.Execute(ctx, suites, opt)
		if len(rep.Outcomes) == 0 {
			e.errorf("no negotiation matches --run %q and --shard %q", *filter, *shard)
			return exitUsage
		}
		w := e.stdout
		var file string
		if *rf.out != "" {
			if err := scenarios.WriteTranscripts(*rf.out, rep.Outcomes); err != nil {
				e.errorf("writing transcripts: %v", err)
				return exitFail
			}
			ext := map[string]string{"table": "txt", "json": "json", "junit": "xml", "html": "html"}[*out]
			file = filepath.Join(*rf.out, "report."+ext)
			f, err := os.Create(file)
			if err != nil {
				e.errorf("%v", err)
				return exitFail
			}
			defer f.Close()
			w = f
		}
		var err error
		switch *out {
		case "json":
			err = scenarios.WriteJSON(w, rep)
		case "junit":
			err = scenarios.WriteJUnit(w, rep)
		case "html":
			err = scenarios.WriteHTML(w, rep)
		default:
			scenarios.WriteText(w, rep, *verbose)
		}
		if err != nil {
			e.errorf("writing the report: %v", err)
			return exitFail
		}
		if file != "" {
			passed, failed := rep.Counts()
			fmt.Fprintf(e.stdout, "wrote %s and %d transcripts in %s\n", file, len(rep.Outcomes), filepath.Join(*rf.out, "transcripts"))
			fmt.Fprintf(e.stdout, "Summary: %d passed, %d failed\n", passed, failed)
		}
		if !rep.Passed() {
			return exitFail
		}
		return exitOK
	}
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
