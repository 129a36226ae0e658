package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/scenarios"
	"xmppneg/sim"
)

func init() {
	register(&command{
		name:    "negotiate",
		summary: "Run real negotiations between two in-process endpoints and report which method succeeded, or where and why it failed.",
		usage:   "--initiator SPEC --receiver SPEC [--direction initiator-to-receiver|both] [--transcript] [-o " + formatUsage(answerFormats...) + "]",
		example: "xmppneg negotiate --initiator 'tls=Required,sasl=Optional,dialback=true' \\\n    --receiver 'tls=Optional,sasl=NotSupported,dialback=true,cert=expired'\n" +
			"xmppneg negotiate --initiator 'tls=NotSupported,sasl=NotSupported' --receiver 'tls=Required' --direction both --transcript",
		setup: setupNegotiate,
	})
	register(&command{
		name:    "certs",
		summary: "Write the test PKI (CA and leaf certificates) as PEM files for real servers; an existing CA in the directory is kept.",
		usage:   "--out DIR --domain DOMAIN [--domain DOMAIN ...] [--state STATE] [--new-ca]",
		example: "xmppneg certs --out pki --domain a.test --domain b.test\nxmppneg certs --out pki --domain c.test --state expired",
		setup:   setupCerts,
	})
}

var specHelp = "comma-separated key=value: " + policy.SpecKeysHelp

func setupNegotiate(fs *flag.FlagSet, e *env) func([]string) int {
	initSpec := fs.String("initiator", "", "initiating endpoint: "+specHelp+" (unset keys: tls=Optional,sasl=Optional,dialback=true,cert=valid,strict=true)")
	recvSpec := fs.String("receiver", "", "receiving endpoint, same keys as --initiator")
	initDomain := fs.String("initiator-domain", "a.test", "domain of the initiating endpoint")
	recvDomain := fs.String("receiver-domain", "b.test", "domain of the receiving endpoint")
	direction := fs.String("direction", "initiator-to-receiver", "initiator-to-receiver, or both (also receiver to initiator)")
	transcript := fs.Bool("transcript", false, "print the XML transcript of every connection")
	initFaults := fs.String("initiator-faults", "", "protocol faults of the initiating endpoint, comma-separated: "+sim.FaultNames())
	recvFaults := fs.String("receiver-faults", "", "protocol faults of the receiving endpoint, same names")
	timeout := fs.Duration("timeout", sim.DefaultTimeout, "deadline of each negotiation")
	out := outputFlag(fs, answerFormats...)
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		a, err := policy.ParseSpec(*initSpec)
		if err != nil {
			e.errorf("--initiator: %v", err)
			return exitUsage
		}
		b, err := policy.ParseSpec(*recvSpec)
		if err != nil {
			e.errorf("--receiver: %v", err)
			return exitUsage
		}
		fa, err := sim.ParseFaults(*initFaults)
		if err != nil {
			e.errorf("--initiator-faults: %v", err)
			return exitUsage
		}
		fb, err := sim.ParseFaults(*recvFaults)
		if err != nil {
			e.errorf("--receiver-faults: %v", err)
			return exitUsage
		}
		if *direction != "initiator-to-receiver" && *direction != "both" {
			e.errorf("--direction: %q is not initiator-to-receiver or both", *direction)
			return exitUsage
		}
		if *timeout <= 0 {
			e.errorf("--timeout must be positive")
			return exitUsage
		}
		for _, d := range []struct{ flag, domain string }{{"--initiator-domain", *initDomain}, {"--receiver-domain", *recvDomain}} {
			if err := sim.CheckDomain(d.domain); err != nil {
				e.errorf("%s: %v", d.flag, err)
				return exitUsage
			}
		}
		if *initDomain == *recvDomain {
			e.errorf("both endpoints are %s; give them different domains", *initDomain)
			return exitUsage
		}
		// One run of the scenarios pipeline: the same records, JSON shape
		// and oracle comparison as every suite.
		init := scenarios.Endpoint{Domain: *initDomain, Settings: a, Faults: fa, Timeout: *timeout}
		recv := scenarios.Endpoint{Domain: *recvDomain, Settings: b, Faults: fb, Timeout: *timeout}
		expect := scenarios.Expect{Oracle: scenarios.Predicted}
		if fa.String() != "" || fb.String() != "" {
			// The oracle knows nothing of faults.
			expect = scenarios.Expect{Oracle: scenarios.Unchecked}
		}
		suite := &scenarios.Suite{Name: "negotiate", File: "the command line", Cases: []*scenarios.Case{
			{ID: "negotiate/" + init.Domain + "-to-" + recv.Domain, Suite: "negotiate", Name: init.Domain + " → " + recv.Domain,
				Source: "the command line", Initiator: init, Receiver: recv, Expect: expect},
		}}
		if *direction == "both" {
			suite.Cases = append(suite.Cases, &scenarios.Case{ID: "negotiate/" + recv.Domain + "-to-" + init.Domain, Suite: "negotiate",
				Name: recv.Domain + " → " + init.Domain, Source: "the command line", Initiator: recv, Receiver: init, Expect: expect})
		}
		ctx, stop := interruptible()
		defer stop()
		rep, err := scenarios.Execute(ctx, []*scenarios.Suite{suite}, scenarios.Options{Jobs: 1, KeepTranscripts: true})
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		rep.InlineTranscripts = true
		code := exitOK
		for _, n := range rep.Negotiations {
			if n.Result == nil {
				e.errorf("%s", n.Why)
				return exitFail
			}
			if !n.Result.Outcome.OK() {
				code = exitFail
			}
		}
		if rep.Interrupted {
			code = exitInterrupted
		}
		if *out == "json" {
			if err := scenarios.WriteJSON(e.stdout, rep); err != nil {
				e.errorf("%v", err)
				return exitFail
			}
			return code
		}
		for _, n := range rep.Negotiations {
			oracle := ""
			if p := n.Prediction; p != nil {
				oracle = "as predicted"
				if !n.Pass {
					oracle = e.paint("yellow", "predicted "+p.Outcome.String())
				}
			}
			printResult(e, n.Result, oracle, *transcript)
		}
		if rep.Interrupted {
			scenarios.WriteSummary(e.stdout, rep, e.style(false))
		}
		return code
	}
}

// printResult writes one negotiation for a person: the method or where
// and why it failed, what was recovered from, TLS, what the oracle said
// of it (when it said something), and the transcript.
func printResult(e *env, r *sim.Result, oracle string, transcript bool) {
	if r.Scan != nil {
		// The probe trying one TLS version: not a negotiation.
		fmt.Fprintln(e.stdout, r.Scan)
		return
	}
	if r.VerifyAnswered {
		// A dialback verify connection doing its job: one line.
		fmt.Fprintf(e.stdout, "%s\n", r.Explain())
		if transcript {
			fmt.Fprint(e.stdout, indent(r.TranscriptText()), "\n")
		}
		fmt.Fprintln(e.stdout)
		return
	}
	if o := r.Outcome; o.OK() {
		fmt.Fprintf(e.stdout, "%s: %s\n", r.Route(), e.paint("green", "authenticated with "+o.Method.Name()+" ("+o.Method.String()+")"))
	} else {
		fmt.Fprintf(e.stdout, "%s: %s\n", r.Route(), e.paint("red", "FAILED"))
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	if f := r.Outcome.Failure; f != nil {
		step := f.Step.String()
		if f.During != 0 {
			step += " (during " + f.During.String() + ")"
		}
		fmt.Fprintf(w, "  step:\t%s\n  condition:\t%s\n  raised by:\t%s\n  why:\t%s\n", step, f.Condition, f.By, f.Message)
	}
	for _, f := range r.Recovered {
		fmt.Fprintf(w, "  recovered:\t%s %s by %s: %s\n", f.Step, f.Condition, f.By, f.Message)
	}
	if r.TLS != nil {
		fmt.Fprintf(w, "  tls:\t%s, %s; receiver's certificate: %s\n", r.TLS.Version, r.TLS.CipherSuite, orNone(r.TLS.PeerCertificate))
	} else {
		fmt.Fprintf(w, "  tls:\tnone\n")
	}
	fmt.Fprintf(w, "  duration:\t%.2f ms\n", float64(r.Duration.Microseconds())/1000)
	if oracle != "" {
		fmt.Fprintf(w, "  oracle:\t%s\n", oracle)
	}
	w.Flush()
	if transcript {
		fmt.Fprintln(e.stdout, "  transcript:")
		fmt.Fprint(e.stdout, indent(r.TranscriptText()), "\n")
	}
	fmt.Fprintln(e.stdout)
}

func orNone(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return fmt.Sprint(*s) }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func setupCerts(fs *flag.FlagSet, e *env) func([]string) int {
	dir := fs.String("out", "", "`directory` to write to (created if needed)")
	var domains stringsFlag
	fs.Var(&domains, "domain", "`domain` to issue a certificate for (repeatable)")
	state := fs.String("state", "valid", "`state` of the leaf certificates: "+certs.AcceptedStates)
	newCA := fs.Bool("new-ca", false, "replace the CA found in the directory (certificates it issued stop validating)")
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		if *dir == "" || len(domains) == 0 {
			e.errorf("--out and at least one --domain are required (see 'xmppneg certs --help')")
			return exitUsage
		}
		for _, d := range domains {
			// Each becomes two file names under --out: checked before
			// anything is written.
			if err := sim.CheckDomain(d); err != nil {
				e.errorf("--domain: %v", err)
				return exitUsage
			}
		}
		st, err := certs.ParseState(*state)
		if err != nil {
			e.errorf("--state: %v", err)
			return exitUsage
		}
		if st == certs.Missing {
			e.errorf("--state missing has no certificate to write")
			return exitUsage
		}
		// A CA already in the directory is what servers set up with it
		// trust: new leaves come from it unless a new CA is asked for.
		pki, err := certs.LoadCA(*dir)
		reused := err == nil
		switch {
		case *newCA || errors.Is(err, os.ErrNotExist):
			pki, err = certs.New()
			reused = false
		case err != nil:
			e.errorf("--out %s: %v (use --new-ca to replace it)", *dir, err)
			return exitFail
		}
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		if err := pki.WritePEM(*dir, st, domains...); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		if reused {
			fmt.Fprintf(e.stdout, "kept %s (the CA found there; --new-ca replaces it)\n", filepath.Join(*dir, "ca.pem"))
		} else {
			fmt.Fprintf(e.stdout, "wrote %s, %s (the CA to trust)\n", filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca.key"))
		}
		for _, d := range domains {
			c, err := pki.Certificate(d, st)
			if err != nil {
				e.errorf("%v", err)
				return exitFail
			}
			until := "valid until"
			if st == certs.Expired {
				until = "expired on"
			}
			fmt.Fprintf(e.stdout, "wrote %s, %s (%s, %s %s)\n", filepath.Join(*dir, d+".crt"), filepath.Join(*dir, d+".key"),
				st, until, c.Leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
		}
		return exitOK
	}
}
