package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/safefile"
	"xmppneg/scenarios/partners"
	"xmppneg/sim"
	"xmppneg/sim/probe"
	"xmppneg/sim/resolve"
)

func init() {
	register(&command{
		name: "partners",
		summary: "Read a gateway's XMPP partner list (Get-CsXmppAllowedPartner output, Export-Csv, ConvertTo-Json or New-CsXmppAllowedPartner lines) and say, from real negotiations, which partners work, what blocks the others, and the Set-CsXmppAllowedPartner line that fixes them. " +
			"A fix is proposed only for a failure seen with a partner whose server is declared (--partner, --profiles) or probed (--probe). " +
			"Exit 0 when every partner works (or works with a weaker method), 1 when any FAILS, is unreachable or unknown (as JUnit's failures and the JSON summary's ok say), 2 on a usage error.",
		usage: "FILE [--profiles FILE] [--partner DOMAIN=PROFILE|SPEC ...] [--probe [--resolver HOST:PORT] [--pki DIR] [--from DOMAIN] [--listen HOST:PORT] [--dns-listen ADDR]] [--gateway SPEC] [-o " + partners.Writers.Usage() + "] [--out DIR] [--lang en|ko] [-j N] [-v]",
		example: "xmppneg partners scenarios/examples/partners.ps1 --profiles scenarios/examples/partners-servers.yaml\n" +
			"xmppneg partners partners.csv --partner jabber.example=prosody-0.12 --gateway cert=no-client-auth -o html --out report/\n" +
			"xmppneg partners partners.json -o json | jq '.partners[] | select(.fix) | .fix.cmdlet'\n" +
			"xmppneg partners partners.csv --probe --pki pki --from harness.example --listen 0.0.0.0:5269\n" +
			"xmppneg partners domains.txt --profiles partners-servers.yaml --gateway config=/etc/prosody/prosody.cfg.lua#example.org",
		setup: setupPartners,
	})
}

// probePartners probes domains, jobs at once, as 'xmppneg probe' does,
// and reads each report for the partner report.
func probePartners(ctx context.Context, e *env, lf *liveFlags, res *resolve.Resolver, from, listen string, timeout time.Duration, jobs int, domains []string) (map[string]*partners.Probed, error) {
	out := map[string]*partners.Probed{}
	if len(domains) == 0 {
		return out, nil
	}
	env, stop, err := lf.probeEnv(res, from, listen, timeout)
	if err != nil {
		return nil, err
	}
	defer stop()
	for _, name := range []string{"--resolver", "--pki", "--dns-listen", "--listen", "--from"} {
		env.Given[name] = true
	}
	reports := make([]*probe.Report, len(domains))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var done atomic.Int32
	for i, d := range domains {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, d string) {
			defer wg.Done()
			defer func() { <-sem }()
			reports[i] = env.Probe(ctx, d, "")
			if isTerminal(e.stderr) {
				fmt.Fprintf(e.stderr, "\rprobed %d/%d partners", done.Add(1), len(domains))
			}
		}(i, d)
	}
	wg.Wait()
	if isTerminal(e.stderr) {
		fmt.Fprint(e.stderr, "\r\x1b[K")
	}
	for i, d := range domains {
		out[strings.ToLower(d)] = partners.LearnFromProbe(reports[i])
	}
	return out, nil
}

func setupPartners(fs *flag.FlagSet, e *env) func([]string) int {
	profiles := fs.String("profiles", "", "YAML `file` of \"partner.domain: profile-or-spec\" lines: what each partner runs")
	var declared stringsFlag
	fs.Var(&declared, "partner", "DOMAIN=PROFILE or DOMAIN=SPEC: what one partner runs (repeatable; overrides --profiles)")
	gateway := fs.String("gateway", "", "the gateway's certificate, secret and behaviour knobs, as a spec over profile lync2013-gateway (each entry's TLS, SASL and dialback replace the spec's); or config=FILE#HOST: your own Prosody, ejabberd or jabberd2 server as its configuration file says (FILE is then a list of partner domains, and fixes are lines of your file)")
	gatewayDomain := fs.String("gateway-domain", "contoso.test", "the gateway's XMPP domain")
	maxInput := sizeFlag(lyncpartner.MaxListBytes)
	fs.Var(&maxInput, "max-input", "the largest partner list read, such as 64MiB or 128MiB")
	out := outputFlag(fs, partners.Writers.Formats()...)
	outDir := fs.String("out", "", "`directory` for the report file and one transcript per negotiation")
	lang := fs.String("lang", "en", "language of the text and HTML labels: en, or ko (the Korean document's terms)")
	verbose := fs.Bool("v", false, "details and transcripts of every partner, not only of those that need something")
	timeout := fs.Duration("timeout", sim.DefaultTimeout, "deadline of each negotiation")
	jobs := fs.Int("j", 4*runtime.NumCPU(), "run `N` negotiations at once (one that waits for its deadline holds a worker), and probe N domains at once with --probe (default: 4 per CPU)")
	doProbe := fs.Bool("probe", false, "probe every partner whose server is not declared, as 'xmppneg probe' does, and judge it with the settings learned (unreachable when nothing answers)")
	from := fs.String("from", "harness.test", "with --probe: the harness's domain, which the partners' servers must find (their dialback check, their answers)")
	listen := fs.String("listen", "127.0.0.1:0", "with --probe: where the harness listens for the partners' servers' connections back")
	lf := &liveFlags{spec: new(string), cert: new(string), secretFile: new(string),
		pki:       fs.String("pki", "", "with --probe: directory written by 'xmppneg certs': its CA is trusted and its certificate for --from presented"),
		dnsListen: fs.String("dns-listen", "", "with --probe: serve SRV/A records of --from on this loopback UDP address, for the servers' connections back"),
		resolver:  fs.String("resolver", "", "with --probe: the DNS server to find the partners' servers with, HOST:PORT (default: the first of /etc/resolv.conf)")}
	return func(args []string) int {
		if len(args) != 1 {
			e.errorf("give one partner list file (see 'xmppneg partners --help')")
			return exitUsage
		}
		if *lang != "en" && *lang != "ko" {
			e.errorf("--lang %q: accepted values are en, ko", *lang)
			return exitUsage
		}
		if *timeout <= 0 || *jobs < 1 {
			e.errorf("--timeout must be positive and -j at least 1")
			return exitUsage
		}
		// Not a domain, the gateway's endpoint cannot start and every
		// partner would "FAIL" for it.
		if err := sim.CheckDomain(*gatewayDomain); err != nil {
			e.errorf("--gateway-domain: %v", err)
			return exitUsage
		}
		if !*doProbe {
			var stray []string
			fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "from", "listen", "pki", "dns-listen", "resolver":
					stray = append(stray, "--"+f.Name)
				}
			})
			if len(stray) > 0 {
				e.errorf("%s goes with --probe", strings.Join(stray, ", "))
				return exitUsage
			}
		}
		if strings.HasPrefix(strings.TrimSpace(*gateway), "config=") {
			var probeFn func(context.Context, []string) (map[string]*partners.Probed, error)
			if *doProbe {
				res, ok := lf.dns(e)
				if !ok {
					return exitUsage
				}
				if err := sim.CheckDomain(*from); err != nil {
					e.errorf("--from: %v", err)
					return exitUsage
				}
				probeFn = func(ctx context.Context, domains []string) (map[string]*partners.Probed, error) {
					return probePartners(ctx, e, lf, res, *from, *listen, *timeout, *jobs, domains)
				}
			}
			return ownPartners(e, args[0], *gateway, *profiles, declared, *out, *verbose, *timeout, *jobs, probeFn)
		}
		data, err := safefile.Read(args[0], int64(maxInput), "--max-input")
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		entries, notes, err := lyncpartner.Parse(filepath.Base(args[0]), data)
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		decl, ok := declaredPartners(e, *profiles, declared)
		if !ok {
			return exitUsage
		}
		listed := map[string]bool{}
		for _, en := range entries {
			listed[strings.ToLower(en.Domain)] = true
		}
		for d := range decl {
			if !listed[d] {
				notes = append(notes, lyncpartner.Note{Where: "declared", Text: fmt.Sprintf("%s is declared but not in the partner list", d)})
			}
		}
		base, _ := policy.LookupProfile("lync2013-gateway")
		gw, err := policy.ParseSpecFrom(base.Settings, *gateway)
		if err != nil {
			e.errorf("--gateway: %v", err)
			return exitUsage
		}
		if *outDir != "" {
			if err := writable(*outDir); err != nil {
				e.errorf("--out %s: %v", *outDir, err)
				return exitUsage
			}
		}
		for _, n := range notes {
			fmt.Fprintf(e.stderr, "note: %s\n", n)
		}
		ctx, stop := interruptible()
		defer stop()
		var probed map[string]*partners.Probed
		if *doProbe {
			res, ok := lf.dns(e)
			if !ok {
				return exitUsage
			}
			if err := sim.CheckDomain(*from); err != nil {
				e.errorf("--from: %v", err)
				return exitUsage
			}
			var todo []string
			for _, en := range entries {
				if _, ok := decl[strings.ToLower(en.Domain)]; !ok {
					todo = append(todo, en.Domain)
				}
			}
			if probed, err = probePartners(ctx, e, lf, res, *from, *listen, *timeout, *jobs, todo); err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			if ctx.Err() != nil {
				e.errorf("interrupted: nothing to report")
				return exitInterrupted
			}
		}
		rep, err := partners.Evaluate(ctx, entries, notes, partners.Options{Gateway: &gw, GatewayDomain: *gatewayDomain,
			Declared: decl, Probed: probed, Timeout: *timeout, Jobs: *jobs, Transcripts: *outDir != "" || *verbose})
		if ctx.Err() != nil {
			e.errorf("interrupted: nothing to report")
			return exitInterrupted
		}
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		if *outDir != "" {
			if err := partners.WriteTranscripts(*outDir, rep); err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
		}
		var buf bytes.Buffer
		err = partners.Writers.Write(&buf, *out, rep, partners.Style{Color: e.color && *outDir == "", Verbose: *verbose, Lang: partners.Lang(*lang)})
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		if *outDir != "" {
			file := filepath.Join(*outDir, "partners."+reportExt(*out))
			if err := safefile.Write(file, buf.Bytes(), 0o644); err != nil {
				e.errorf("--out: %v", err)
				return exitFail
			}
			fmt.Fprintf(e.stdout, "wrote %s and %d transcripts in %s\n", file, rep.Transcripts(), filepath.Join(*outDir, "transcripts"))
			if *out != "text" {
				buf.Reset()
				partners.WriteText(&buf, rep, partners.Style{Color: e.color, Lang: partners.Lang(*lang)})
			}
		}
		e.stdout.Write(buf.Bytes())
		// One rule for the exit code, JUnit and the JSON summary's ok:
		// any partner that FAILS, is unreachable or unknown fails the list.
		if !rep.OK() {
			return exitFail
		}
		return exitOK
	}
}

// declaredPartners reads what the user said each partner runs: the
// --profiles file, then every --partner DOMAIN=PROFILE|SPEC over it. A
// bad one is reported and ok is false (a usage error).
func declaredPartners(e *env, profilesFile string, flags []string) (decl map[string]partners.Declared, ok bool) {
	decl = map[string]partners.Declared{}
	if profilesFile != "" {
		var err error
		if decl, err = partners.LoadDeclared(profilesFile); err != nil {
			e.errorf("--profiles: %v", err)
			return nil, false
		}
	}
	for _, d := range flags {
		domain, what, ok := strings.Cut(d, "=")
		if !ok || domain == "" || what == "" {
			e.errorf("--partner %q is not DOMAIN=PROFILE or DOMAIN=SPEC", d)
			return nil, false
		}
		if err := sim.CheckDomain(domain); err != nil {
			e.errorf("--partner: %v", err)
			return nil, false
		}
		v, err := partners.ParseDeclared(what)
		if err != nil {
			e.errorf("--partner %s: %v", domain, err)
			return nil, false
		}
		decl[strings.ToLower(domain)] = v
	}
	return decl, true
}
