package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"xmppneg/certs"
	"xmppneg/policy/report"
	"xmppneg/scenarios"
	"xmppneg/sim/federation"
	"xmppneg/sim/realserver"
)

func init() {
	register(&command{
		name: "federate",
		summary: "Make two real servers (prosody, ejabberd, jabberd2) meet on loopback, each finding the other through DNS, " +
			"and say for each direction which method succeeded or where it failed, against what their profiles predict.",
		usage: "A B [--a-set KNOB=VALUE ...] [--b-set KNOB=VALUE ...] [--pki DIR] [--timeout D] [--no-relay] [--transcript] [-o " + federateWriters.Usage() + "] [--out DIR]\n" +
			"  or: federate --matrix [KIND ...] [-j N] [--timeout D] [-o " + federateWriters.Usage() + "] [--out DIR]",
		example: "xmppneg federate prosody ejabberd\n" +
			"xmppneg federate prosody ejabberd --b-set s2s_use_starttls=required --b-set dialback=false\n" +
			"xmppneg federate ejabberd jabberd2 --a-set cert=no-client-auth --b-set pemfile=false -o json\n" +
			"xmppneg federate --matrix -o html --out report/federation",
		setup: setupFederate,
	})
}

func kindNames() string {
	var names []string
	for _, k := range realserver.Kinds() {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// parseKnobs reads KNOB=VALUE flags into a kind's setting.
func parseKnobs(kind *realserver.Kind, flagName string, kvs []string) (realserver.Setting, error) {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%s %q is not KNOB=VALUE", flagName, kv)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s: %s given twice", flagName, k)
		}
		m[k] = v
	}
	s, err := kind.Parse(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	return s, nil
}

// federateWriters are the suite report's, its table called text (one
// pair's text is writeFederateText, with what the servers logged), and
// no JSON Lines: the report is written once the servers have met.
var federateWriters = scenarios.Writers.Without(report.JSONL).As(report.Table, report.Text)

func setupFederate(fs *flag.FlagSet, e *env) func([]string) int {
	var aSet, bSet stringsFlag
	fs.Var(&aSet, "a-set", "KNOB=VALUE of server A, as 'xmppneg server --set' (repeatable)")
	fs.Var(&bSet, "b-set", "KNOB=VALUE of server B (repeatable)")
	pkiDir := fs.String("pki", "", "`directory` of a test CA to issue both servers' certificates from (kept if there, else created there); default: a fresh CA in memory")
	timeout := fs.Duration("timeout", federation.DefaultTimeout, "how long each direction is watched; the servers' own deadlines are 30 s, so this one governs, and a direction still under way then is a timeout raised by its initiator")
	noRelay := fs.Bool("no-relay", false, "let the servers meet directly and classify from their logs alone (no transcript; step and side are not known)")
	transcript := fs.Bool("transcript", false, "print each direction's transcript (main and verify connections, inside TLS included) and the servers' relevant log lines")
	outDir := fs.String("out", "", "`directory` for the report file and one transcript file per direction")
	out := outputFlag(fs, federateWriters.Formats()...)
	matrix := fs.Bool("matrix", false, "the federation suite: every two kinds given (all, by default), each in its default and its field settings, both directions")
	jobs := fs.Int("j", 8, "with --matrix, how many pairs meet at once (they mostly wait)")
	verbose := fs.Bool("v", false, "with --matrix, list every negotiation, not only those that disagree")
	return func(args []string) int {
		if *matrix {
			return runFederationMatrix(e, args, *timeout, *jobs, *noRelay, *out, *outDir, *verbose)
		}
		if len(args) != 2 {
			e.errorf("give two kinds of server, A and B: %s (see 'xmppneg federate --help')", kindNames())
			return exitUsage
		}
		var settings [2]realserver.Setting
		for i, name := range args {
			kind, err := realserver.LookupKind(name)
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			flagName, kvs := "--a-set", aSet
			if i == 1 {
				flagName, kvs = "--b-set", bSet
			}
			if settings[i], err = parseKnobs(kind, flagName, kvs); err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
		}
		if *timeout <= 0 || *timeout > 10*time.Minute {
			e.errorf("--timeout must be positive and at most 10m")
			return exitUsage
		}
		pki, err := federatePKI(*pkiDir)
		if err != nil {
			e.errorf("--pki %s: %v", *pkiDir, err)
			return exitUsage
		}
		pair := scenarios.FederationPair{A: settings[0], B: settings[1], DomainA: "a-" + args[0] + ".test", DomainB: "b-" + args[1] + ".test"}
		ctx, stop := interruptible()
		defer stop()
		start := time.Now()
		ns, res, err := scenarios.Federate(ctx, pair, scenarios.FederationOptions{
			Options: federation.Options{Timeout: *timeout, NoRelay: *noRelay, PKI: pki}, Source: "the command line"})
		if err != nil {
			if ctx.Err() != nil {
				e.errorf("interrupted: %v", err)
				return exitInterrupted
			}
			e.errorf("%v", err)
			return exitFail
		}
		rep := scenarios.FederationReport("federate", ns, time.Since(start), ctx.Err() != nil)
		rep.InlineTranscripts = *transcript
		code := reportExit(rep)
		var buf bytes.Buffer
		if report.Format(*out) == report.Text {
			writeFederateText(&buf, rep, res, e.style(*transcript), *transcript)
		} else if err := federateWriters.Write(&buf, *out, rep, e.style(false)); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		if *outDir != "" {
			if err := scenarios.WriteTranscripts(*outDir, rep.Negotiations); err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
			file := filepath.Join(*outDir, "report."+reportExt(*out))
			if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
			fmt.Fprintf(e.stdout, "wrote %s and %s in %s\n", file, scenarios.Counted(len(rep.Negotiations), "transcript"), filepath.Join(*outDir, "transcripts"))
			if *out != "text" {
				return code
			}
			buf.Reset()
			writeFederateText(&buf, rep, res, e.style(false), false)
		}
		_, _ = e.stdout.Write(buf.Bytes())
		return code
	}
}

// federatePKI is the CA of --pki (kept, or created there), or a fresh
// one in memory.
func federatePKI(dir string) (*certs.PKI, error) {
	if dir == "" {
		return certs.New()
	}
	pki, err := certs.LoadCA(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		if pki, err = certs.New(); err == nil {
			err = pki.WritePEM(dir, certs.Valid)
		}
	}
	return pki, err
}

// writeFederateText renders the report of a federation: both servers,
// then each direction as observed, predicted and emulated, with the log
// lines that classify it.
func writeFederateText(w io.Writer, rep *scenarios.Report, res *federation.Result, st scenarios.Style, transcripts bool) {
	fmt.Fprintf(w, "A: %s\nB: %s\n", res.A.Describe(), res.B.Describe())
	fmt.Fprintf(w, "each direction watched for %s (the servers' own deadlines are 30 s)\n\n", res.Timeout)
	for _, n := range rep.Negotiations {
		c := n.Case
		fmt.Fprintf(w, "%s  %s  %s\n", st.Paint("bold", c.Direction), c.Name, statusWord(st, n))
		fmt.Fprintf(w, "  observed:  %s\n", n.Observed())
		if f := n.Observed().Failure; f != nil && f.Message != "" {
			fmt.Fprintf(w, "             %s\n", f.Message)
		}
		fmt.Fprintf(w, "  oracle:    %s\n", n.Expected)
		if n.Emulated != nil {
			fmt.Fprintf(w, "  engine:    %s\n", n.Emulated.Outcome)
		}
		if n.Why != "" {
			fmt.Fprintf(w, "  why:       %s\n", n.Why)
		}
		if n.Note != "" {
			fmt.Fprintf(w, "  note:      %s\n", n.Note)
		}
		if n.ServerLog != "" {
			fmt.Fprintf(w, "  logs:\n%s\n", indentBy(n.ServerLog, "    "))
		}
		if transcripts && n.Result != nil {
			for _, note := range n.Result.Notes {
				fmt.Fprintf(w, "  relay: %s\n", note)
			}
			fmt.Fprintf(w, "  transcript:\n%s\n", indentBy(strings.TrimRight(n.Result.TranscriptText(), "\n"), "    "))
		}
		fmt.Fprintln(w)
	}
	scenarios.WriteSummary(w, rep, st)
}

func statusWord(st scenarios.Style, n *scenarios.Negotiation) string {
	color := map[string]string{"PASS": "green", "FAIL": "red", "CANCELLED": "yellow"}[n.Status()]
	return st.Paint(color, n.Status())
}

func indentBy(s, p string) string {
	return p + strings.ReplaceAll(s, "\n", "\n"+p)
}

// runFederationMatrix runs the federation suite over the kinds named
// (all the launcher knows when none are).
func runFederationMatrix(e *env, names []string, timeout time.Duration, jobs int, noRelay bool, format, outDir string, verbose bool) int {
	kinds := realserver.Kinds()
	if len(names) > 0 {
		kinds = nil
		for _, n := range names {
			k, err := realserver.LookupKind(n)
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			kinds = append(kinds, k)
		}
	}
	if jobs < 1 || jobs > 64 {
		e.errorf("-j must be between 1 and 64")
		return exitUsage
	}
	if timeout <= 0 || timeout > 10*time.Minute {
		e.errorf("--timeout must be positive and at most 10m")
		return exitUsage
	}
	plan, err := scenarios.PlanFederation(kinds)
	if err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	for _, s := range plan.Skipped {
		e.errorf("left out of the matrix: %s", s)
	}
	ctx, stop := interruptible()
	defer stop()
	var writeErr error
	rep, err := scenarios.RunFederation(ctx, plan, federation.Options{Timeout: timeout, NoRelay: noRelay}, jobs, func(n *scenarios.Negotiation) {
		if outDir != "" && writeErr == nil {
			writeErr = scenarios.WriteTranscript(outDir, n)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			e.errorf("interrupted: %v", err)
			return exitInterrupted
		}
		e.errorf("%v", err)
		return exitFail
	}
	if writeErr != nil {
		e.errorf("--out: %v", writeErr)
		return exitFail
	}
	code := reportExit(rep)
	var buf bytes.Buffer
	if err := federateWriters.Write(&buf, format, rep, scenarios.Style{Color: e.color, Verbose: verbose, FailuresOnly: !verbose && format == "text"}); err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	if outDir != "" {
		file := filepath.Join(outDir, "report."+reportExt(format))
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			e.errorf("--out: %v", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "wrote %s and %s in %s\n", file, scenarios.Counted(len(rep.Negotiations), "transcript"), filepath.Join(outDir, "transcripts"))
		scenarios.WriteSummary(e.stdout, rep, e.style(false))
		return code
	}
	_, _ = e.stdout.Write(buf.Bytes())
	return code
}
