package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim"
)

func init() {
	register(&command{
		name:    "negotiate",
		summary: "Run real negotiations between two in-process endpoints and report which method succeeded, or where and why it failed.",
		usage:   "--initiator SPEC --receiver SPEC [--direction initiator-to-receiver|both] [--transcript] [-o text|json]",
		example: "xmppneg negotiate --initiator 'tls=Required,sasl=Optional,dialback=true' \\\n    --receiver 'tls=Optional,sasl=NotSupported,dialback=true,cert=expired'\n" +
			"xmppneg negotiate --initiator 'tls=NotSupported,sasl=NotSupported' --receiver 'tls=Required' --direction both --transcript",
		setup: setupNegotiate,
	})
	register(&command{
		name:    "certs",
		summary: "Write the test PKI (CA and leaf certificates) as PEM files for real servers.",
		usage:   "--out DIR --domain DOMAIN [--domain DOMAIN ...] [--state STATE]",
		example: "xmppneg certs --out pki --domain a.test --domain b.test",
		setup:   setupCerts,
	})
}

const specHelp = "comma-separated key=value: tls, sasl (Required|Optional|NotSupported), dialback (true|false), " +
	"cert (valid|missing|expired|self-signed|untrusted|wrong-name|no-client-auth), strict (true|false), secret"

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
	out := outputFlag(fs, "text", "json")
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
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		results, err := sim.Pair(ctx, sim.Party{Domain: *initDomain, Settings: a, Faults: fa}, sim.Party{Domain: *recvDomain, Settings: b, Faults: fb},
			sim.PairOptions{Timeout: *timeout, Both: *direction == "both"})
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		code := exitOK
		for _, r := range results {
			if _, ok := r.Method(); !ok {
				code = exitFail
			}
			if *out == "json" {
				writeJSON(e.stdout, r)
				continue
			}
			printResult(e, r, *transcript)
		}
		return code
	}
}

func printResult(e *env, r *sim.Result, transcript bool) {
	if m, ok := r.Method(); ok {
		fmt.Fprintf(e.stdout, "%s → %s: %s\n", r.Initiator, r.Receiver, e.paint("green", "authenticated with "+m.Name()+" ("+string(m)+")"))
	} else {
		fmt.Fprintf(e.stdout, "%s → %s: %s\n", r.Initiator, r.Receiver, e.paint("red", "FAILED"))
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	if f := r.Failure; f != nil {
		step := string(f.Step)
		if f.During != "" {
			step += " (during " + string(f.During) + ")"
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
	fmt.Fprintf(w, "  duration:\t%.2f ms\n", r.DurationMS)
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
	dir := fs.String("out", "", "directory to write to (created if needed)")
	var domains stringsFlag
	fs.Var(&domains, "domain", "domain to issue a certificate for (repeatable)")
	state := fs.String("state", "valid", "state of the leaf certificates")
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		if *dir == "" || len(domains) == 0 {
			e.errorf("--out and at least one --domain are required (see 'xmppneg certs --help')")
			return exitUsage
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
		pki, err := certs.New()
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		if err := pki.WritePEM(*dir, st, domains...); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "wrote %s/ca.pem, %s/ca.key (the CA to trust)\n", *dir, *dir)
		for _, d := range domains {
			fmt.Fprintf(e.stdout, "wrote %s/%s.crt, %s/%s.key (%s, valid until %s)\n", *dir, d, *dir, d, st, time.Now().AddDate(1, 0, 0).Format("2006-01-02"))
		}
		return exitOK
	}
}
