package main

import (
	"flag"
	"fmt"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
)

func init() {
	register(&command{
		name:    "probe",
		summary: "Connect to a live s2s server as the harness: what it offers before and after TLS, its certificate, which method succeeds, and why not.",
		usage:   "--domain D --addr HOST:PORT [--from F] [--policy SPEC] [--cert STATE] [--pki DIR] [--dns-listen ADDR] [--transcript] [-o text|json]",
		example: "xmppneg certs --out pki --domain harness.test --domain prosody.test\n" +
			"xmppneg probe --domain prosody.test --addr 127.0.0.1:5269 --from harness.test --pki pki --dns-listen 127.0.0.1:5353",
		setup: setupProbe,
	})
	register(&command{
		name:    "serve",
		summary: "Run a harness endpoint that live servers connect to, printing each inbound negotiation, until interrupted.",
		usage:   "--domain D --listen HOST:PORT [--policy SPEC] [--pki DIR] [--dns-listen ADDR] [--peer DOMAIN=HOST:PORT ...]",
		example: "xmppneg serve --domain harness.test --listen 127.0.0.1:15270 --policy 'tls=Required' --pki pki \\\n    --dns-listen 127.0.0.1:5353 --peer prosody.test=127.0.0.1:5269",
		setup:   setupServe,
	})
}

// liveFlags are the flags probe and serve share.
type liveFlags struct {
	spec, cert, pki, dnsListen *string
	peers                      stringsFlag
	lenient                    bool // strict=false unless the spec says otherwise
}

func defineLiveFlags(fs *flag.FlagSet) *liveFlags {
	f := &liveFlags{
		spec:      fs.String("policy", "", "the harness endpoint's settings: "+specHelp),
		cert:      fs.String("cert", "", "state of the harness's certificate (overrides cert= in --policy)"),
		pki:       fs.String("pki", "", "directory written by 'xmppneg certs': its CA is trusted and its certificates presented"),
		dnsListen: fs.String("dns-listen", "", "serve SRV/A records of the harness's domain on this loopback UDP address, for the server's dialback and outbound lookups"),
	}
	fs.Var(&f.peers, "peer", "DOMAIN=HOST:PORT of a server the harness must reach (as authoritative server for dialback); repeatable")
	return f
}

func (f *liveFlags) settings() (policy.Settings, *certs.PKI, error) {
	base := policy.DefaultSettings()
	if f.lenient {
		base.SetStrict(false)
	}
	s, err := policy.ParseSpecFrom(base, *f.spec)
	if err != nil {
		return s, nil, fmt.Errorf("--policy: %w", err)
	}
	if *f.cert != "" {
		if s.Cert, err = certs.ParseState(*f.cert); err != nil {
			return s, nil, fmt.Errorf("--cert: %w", err)
		}
	}
	if *f.pki == "" {
		pki, err := certs.Default()
		return s, pki, err
	}
	pki, err := certs.LoadPEM(*f.pki)
	if err != nil {
		return s, nil, fmt.Errorf("--pki: %w", err)
	}
	return s, pki, nil
}

// start starts the harness endpoint, the DNS responder if asked, and
// registers the peers.
func (f *liveFlags) start(domain, listen string, network *sim.Network, timeout time.Duration) (*sim.Endpoint, *loopdns.Server, error) {
	s, pki, err := f.settings()
	if err != nil {
		return nil, nil, err
	}
	for _, p := range f.peers {
		d, addr, ok := strings.Cut(p, "=")
		if !ok || d == "" || addr == "" {
			return nil, nil, fmt.Errorf("--peer %q is not DOMAIN=HOST:PORT", p)
		}
		network.Register(d, addr)
	}
	ep, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: network, PKI: pki, Listen: listen, Unlisted: true, RecordReads: true, Timeout: timeout})
	if err != nil {
		return nil, nil, err
	}
	if err := ep.Start(); err != nil {
		return nil, nil, err
	}
	var dns *loopdns.Server
	if *f.dnsListen != "" {
		if dns, err = loopdns.Start(*f.dnsListen); err != nil {
			ep.Close()
			return nil, nil, err
		}
		if err := dns.Set(domain, ep.Addr()); err != nil {
			ep.Close()
			dns.Close()
			return nil, nil, err
		}
	}
	return ep, dns, nil
}

func setupProbe(fs *flag.FlagSet, e *env) func([]string) int {
	domain := fs.String("domain", "", "the server's domain (required)")
	addr := fs.String("addr", "", "the server's s2s address, HOST:PORT (required)")
	from := fs.String("from", "harness.test", "the harness's domain")
	listen := fs.String("listen", "127.0.0.1:0", "loopback address where the harness listens, as authoritative server and for the server's own streams")
	transcript := fs.Bool("transcript", false, "print the XML transcript")
	timeout := fs.Duration("timeout", sim.DefaultTimeout, "deadline of the negotiation")
	out := outputFlag(fs, "text", "json")
	lf := defineLiveFlags(fs)
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		if *domain == "" || *addr == "" {
			e.errorf("--domain and --addr are required (see 'xmppneg probe --help')")
			return exitUsage
		}
		if _, port, err := net.SplitHostPort(*addr); err != nil || port == "" {
			e.errorf("--addr %q is not HOST:PORT (the s2s port is usually 5269: --addr %s:5269)", *addr, strings.TrimSuffix(*addr, ":"))
			return exitUsage
		}
		if *timeout <= 0 {
			e.errorf("--timeout must be positive")
			return exitUsage
		}
		n := sim.NewNetwork()
		n.Register(*domain, *addr)
		// A probe reports what it finds of the server's certificate rather
		// than stopping at it, unless asked to be strict.
		lf.lenient = true
		ep, dns, err := lf.start(*from, *listen, n, *timeout)
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		defer ep.Close()
		if dns != nil {
			defer dns.Close()
		}
		ctx, stop := interruptible()
		defer stop()
		r := ep.Initiate(ctx, *domain)
		code := exitOK
		switch {
		case ctx.Err() != nil:
			code = exitInterrupted
		case !r.Outcome.OK():
			code = exitFail
		}
		if *out == "json" {
			writeJSON(e.stdout, map[string]any{"result": r, "diagnosis": diagnose(r), "findings": findings(r, *domain)})
			return code
		}
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "server:\t%s at %s\n", *domain, *addr)
		fmt.Fprintf(w, "harness:\t%s (%s), listening on %s\n", *from, ep.Settings(), ep.Addr())
		for _, o := range r.Offers {
			when := "offered before TLS:"
			if o.TLS {
				when = "offered after TLS:"
			}
			fmt.Fprintf(w, "%s\t%s\n", when, o.Features)
		}
		if r.TLS != nil {
			fmt.Fprintf(w, "TLS:\t%s, %s\n", r.TLS.Version, r.TLS.CipherSuite)
			fmt.Fprintf(w, "server certificate:\t%s, issued by %s: %s\n", r.TLS.PeerSubject, r.TLS.PeerIssuer, r.TLS.PeerCertificate)
			if r.TLS.PeerPurposes != "" {
				fmt.Fprintf(w, "certificate purposes:\t%s\n", r.TLS.PeerPurposes)
			}
		}
		w.Flush()
		printResult(e, r, "", *transcript)
		fmt.Fprintf(e.stdout, "diagnosis: %s\n", diagnose(r))
		for _, f := range findings(r, *domain) {
			fmt.Fprintf(e.stdout, "finding: %s\n", f)
		}
		return code
	}
}

// findings are what a probe saw that will break federation elsewhere,
// though not with the harness, each with its fix.
func findings(r *sim.Result, domain string) []string {
	var out []string
	if t := r.TLS; t != nil && t.PeerPurposes != "" && !t.PeerClientAuth {
		out = append(out, fmt.Sprintf("the certificate of %s has no clientAuth EKU (%s), as public CAs issue them since 2026: "+
			"when %s connects out it presents this certificate as a TLS client, and servers that check the purpose "+
			"(ejabberd before 25.08, OpenSSL's defaults) refuse SASL EXTERNAL from it (\"unsupported certificate purpose\"). "+
			"Fix: keep dialback enabled on both sides (-SupportDialbackNegotiation $true), or have those servers upgraded; "+
			"a certificate with both serverAuth and clientAuth also works where a CA still issues one.", domain, t.PeerPurposes, domain))
	}
	return out
}

// diagnose says in plain words what a probe's result means for an admin.
func diagnose(r *sim.Result) string {
	if o := r.Outcome; o.OK() {
		s := fmt.Sprintf("federation works with %s", o.Method.Name())
		if len(r.Recovered) > 0 {
			s += fmt.Sprintf(", after %s failed (%s)", r.Recovered[0].Step, r.Recovered[0].Message)
		}
		return s + "."
	}
	f := r.Outcome.Failure
	if f == nil {
		return "the negotiation failed without an error."
	}
	switch {
	case f.Step == outcome.StepTCP:
		return "the server could not be reached: check --addr and that it listens for s2s there."
	case f.Step == outcome.StepTLSHandshake && f.By == outcome.Initiator:
		return "the server's certificate does not validate (" + f.Message + "); give --pki the CA that issued it, or probe with strict=false to go on regardless."
	case f.Step == outcome.StepTLSHandshake:
		return "the server rejected the harness's certificate: use --pki with certificates from a CA the server trusts."
	case f.Step == outcome.StepDialbackVerify || (f.Step == outcome.StepTimeout && f.During == outcome.StepDialback):
		return "dialback could not be verified: the server must reach the harness's domain as authoritative server; run with --dns-listen and point the server's resolver at it."
	case f.Step == outcome.StepStartTLS:
		return "the two sides disagree about TLS: " + f.Message + "."
	case f.Step == outcome.StepSASL || f.Step == outcome.StepDialback:
		return "no authentication method both sides accept: " + f.Message + "."
	}
	return f.Message + "."
}

func setupServe(fs *flag.FlagSet, e *env) func([]string) int {
	domain := fs.String("domain", "", "the harness's domain (required)")
	listen := fs.String("listen", "", "loopback address to listen on, HOST:PORT (required)")
	transcript := fs.Bool("transcript", false, "print the XML transcript of each negotiation")
	lf := defineLiveFlags(fs)
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		if *domain == "" || *listen == "" {
			e.errorf("--domain and --listen are required (see 'xmppneg serve --help')")
			return exitUsage
		}
		ep, dns, err := lf.start(*domain, *listen, sim.NewNetwork(), 0)
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		results := make(chan *sim.Result, 16)
		ep.OnInbound(func(r *sim.Result) { results <- r })
		fmt.Fprintf(e.stdout, "serving %s on %s (%s); interrupt to stop\n", *domain, ep.Addr(), ep.Settings())
		if dns != nil {
			fmt.Fprintf(e.stdout, "DNS: SRV _xmpp-server._tcp.%s on udp %s\n", *domain, dns.Addr())
		}
		ctx, stop := interruptible()
		defer stop()
		for {
			select {
			case r := <-results:
				printResult(e, r, "", *transcript)
			case <-ctx.Done():
				fmt.Fprintln(e.stdout, "stopping")
				done := make(chan struct{})
				go func() { ep.Close(); close(done) }()
				t := time.NewTimer(5 * time.Second)
				defer t.Stop()
				select {
				case <-done:
				case <-t.C:
					e.errorf("negotiations still open after 5 s; exiting anyway")
				}
				if dns != nil {
					dns.Close()
				}
				return exitOK
			}
		}
	}
}
