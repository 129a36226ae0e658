package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/safefile"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/probe"
	"xmppneg/sim/resolve"
)

func init() {
	register(&command{
		name:    "probe",
		summary: "Connect to a live s2s server as the harness: what it offers before and after TLS, its certificate, which method succeeds, and why not.",
		usage:   "--domain D [--addr HOST:PORT | --resolver HOST:PORT] | --domains FILE [-j N]  [--from F] [--policy SPEC] [--cert STATE] [--pki DIR] [--dns-listen ADDR] [--secret-file FILE] [--transcript] [-o " + probe.Writers.Usage() + "]",
		example: "xmppneg certs --out pki --domain harness.test --domain prosody.test\n" +
			"xmppneg probe --domain prosody.test --addr 127.0.0.1:5269 --from harness.test --pki pki --dns-listen 127.0.0.1:5353",
		setup: setupProbe,
	})
	register(&command{
		name:    "serve",
		summary: "Run a harness endpoint that live servers connect to, printing each inbound negotiation, until interrupted.",
		usage:   "--domain D --listen HOST:PORT [--direct-tls-listen HOST:PORT] [--policy SPEC] [--pki DIR] [--dns-listen ADDR] [--resolver HOST:PORT] [--peer DOMAIN=HOST:PORT ...] [--secret-file FILE] [--max-conns N] [--max-per-source N] [--transcript]",
		example: "xmppneg serve --domain harness.test --listen 127.0.0.1:15270 --policy 'tls=Required' --pki pki \\\n    --dns-listen 127.0.0.1:5353 --peer prosody.test=127.0.0.1:5269",
		setup:   setupServe,
	})
}

// liveFlags are the flags probe and serve share.
type liveFlags struct {
	spec, cert, pki, dnsListen, resolver *string
	secretFile                           *string
	peers                                stringsFlag
	// base is what a spec starts from (default: DefaultSettings).
	base *policy.Settings
	// Limits and log of serve's endpoint (zero: the defaults).
	maxConns, perSource int
	logf                func(format string, args ...any)
	// directListen is serve's --direct-tls-listen.
	directListen string
}

// loopback reports whether addr (HOST:PORT) is a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defineLiveFlags(fs *flag.FlagSet) *liveFlags {
	f := &liveFlags{
		spec:      fs.String("policy", "", "the harness endpoint's settings: "+specHelp),
		cert:      fs.String("cert", "", "state of the harness's certificate (overrides cert= in --policy)"),
		pki:       fs.String("pki", "", "directory written by 'xmppneg certs': its CA is trusted and its certificates presented"),
		dnsListen: fs.String("dns-listen", "", "serve SRV/A records of the harness's domain on this loopback UDP address, for the server's dialback and outbound lookups"),
		resolver:  fs.String("resolver", "", "DNS server the harness asks for domains it was not given with --peer (or --addr), HOST:PORT (default: the first of /etc/resolv.conf)"),
		secretFile: fs.String("secret-file", "", "`file` holding the dialback secret, for several nodes of one domain that must share it "+
			"(default: a random secret per process; secret= in --policy works too but shows in the process list)"),
	}
	fs.Var(&f.peers, "peer", "DOMAIN=HOST:PORT of a server the harness must reach (as authoritative server for dialback); repeatable")
	return f
}

func (f *liveFlags) settings() (policy.Settings, *certs.PKI, error) {
	base := policy.DefaultSettings()
	if f.base != nil {
		base = *f.base
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
	if *f.secretFile != "" {
		var warning string
		if s.Secret, warning, err = readSecret(*f.secretFile); err != nil {
			return s, nil, fmt.Errorf("--secret-file: %w", err)
		}
		if warning != "" {
			if f.logf != nil {
				f.logf("warning: --secret-file %s", warning)
			} else {
				fmt.Fprintf(os.Stderr, "xmppneg: warning: --secret-file %s\n", warning)
			}
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

// minSecret is the shortest dialback secret --secret-file accepts: 128
// bits written in hex.
const minSecret = 32

// MaxSecretBytes bounds a --secret-file: a secret is a line.
const MaxSecretBytes = 4 << 10

// readSecret reads a dialback secret from path: its first line, without
// surrounding space. The file must be a regular one (a FIFO would hang
// the read) of at most MaxSecretBytes; warning is set when users other
// than its owner can read it, who could then forge our dialback keys.
func readSecret(path string) (secret, warning string, err error) {
	data, err := safefile.Read(path, MaxSecretBytes, "")
	if err != nil {
		return "", "", err
	}
	if others, err := safefile.OthersCanRead(path); err == nil && others {
		warning = fmt.Sprintf("%s can be read by other users, who could forge this domain's dialback keys: chmod 600 %s", path, path)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	secret = strings.TrimSpace(line)
	switch {
	case secret == "":
		return "", "", fmt.Errorf("%s: the first line is empty", path)
	case len(secret) < minSecret:
		return "", "", fmt.Errorf("%s: the secret is %d characters; use at least %d random ones (openssl rand -hex 32 > %s)", path, len(secret), minSecret, path)
	}
	return secret, warning, nil
}

// dns is the resolver of --resolver, checked.
func (f *liveFlags) dns(e *env) (*resolve.Resolver, bool) {
	if r := *f.resolver; r != "" {
		if _, port, err := net.SplitHostPort(r); err != nil || port == "" {
			e.errorf("--resolver %q is not HOST:PORT (DNS listens on 53: --resolver %s:53)", r, strings.TrimSuffix(r, ":"))
			return nil, false
		}
	}
	return &resolve.Resolver{Server: *f.resolver}, true
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
	if f.directListen != "" {
		s.DirectTLS = true
	}
	if s.DirectTLS && f.base == nil {
		// serve: direct TLS was asked for; say why it cannot be had
		// rather than listen without it.
		switch {
		case s.TLS == policy.NotSupported:
			return nil, nil, fmt.Errorf("direct_tls=true needs TLS: the policy has tls=NotSupported")
		case s.Cert == certs.Missing:
			return nil, nil, fmt.Errorf("direct_tls=true needs a certificate: the policy has cert=missing")
		}
	}
	ep, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: network, PKI: pki, Listen: listen, DirectListen: f.directListen,
		Unlisted: true, RecordReads: true, Timeout: timeout, MaxConns: f.maxConns, MaxConnsPerSource: f.perSource, Logf: f.logf})
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
		if d := ep.DirectAddr(); d != "" {
			host, port, _ := net.SplitHostPort(d)
			p, _ := strconv.Atoi(port)
			dns.SetSRV(resolve.ServiceDirectTLS, domain, loopdns.SRV{Target: host, Port: uint16(p)})
		}
	}
	return ep, dns, nil
}

func setupProbe(fs *flag.FlagSet, e *env) func([]string) int {
	domain := fs.String("domain", "", "the server's XMPP domain (this or --domains is required)")
	domains := fs.String("domains", "", "`file` of domains to probe, one a line (# comments), or a partner list in any format 'xmppneg partners' reads")
	addr := fs.String("addr", "", "the server's s2s address, HOST:PORT, instead of looking it up in DNS (with --domain)")
	from := fs.String("from", "harness.test", "the harness's domain")
	listen := fs.String("listen", "127.0.0.1:0", "loopback address where the harness listens, as authoritative server and for the server's own streams")
	transcript := fs.Bool("transcript", false, "print the XML transcripts")
	timeout := fs.Duration("timeout", sim.DefaultTimeout, "deadline of each negotiation and each TLS handshake")
	jobs := fs.Int("j", 4, "probe `N` domains at once (with --domains)")
	out := outputFlag(fs, probe.Writers.Formats()...)
	lf := defineLiveFlags(fs)
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		switch {
		case (*domain == "") == (*domains == ""):
			e.errorf("give --domain or --domains (see 'xmppneg probe --help')")
			return exitUsage
		case *addr != "" && *domains != "":
			e.errorf("--addr goes with --domain; with --domains, each domain is looked up in DNS")
			return exitUsage
		case *timeout <= 0 || *jobs < 1:
			e.errorf("--timeout must be positive and -j at least 1")
			return exitUsage
		}
		if *addr != "" {
			if _, port, err := net.SplitHostPort(*addr); err != nil || port == "" {
				e.errorf("--addr %q is not HOST:PORT (the s2s port is usually 5269: --addr %s:5269)", *addr, strings.TrimSuffix(*addr, ":"))
				return exitUsage
			}
		}
		res, ok := lf.dns(e)
		if !ok {
			return exitUsage
		}
		list := []string{*domain}
		if *domains != "" {
			var err error
			if list, err = readDomains(*domains); err != nil {
				e.errorf("--domains: %v", err)
				return exitUsage
			}
		}
		env, stopEnv, err := lf.probeEnv(res, *from, *listen, *timeout)
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		defer stopEnv()
		fs.Visit(func(f *flag.Flag) { env.Given["--"+f.Name] = true })
		ctx, stop := interruptible()
		defer stop()
		start := time.Now()
		reports := make([]*probe.Report, len(list))
		sem := make(chan struct{}, *jobs)
		var wg sync.WaitGroup
		var done atomic.Int32
		for i, d := range list {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int, d string) {
				defer wg.Done()
				defer func() { <-sem }()
				reports[i] = env.Probe(ctx, d, *addr)
				if len(list) > 1 && isTerminal(e.stderr) {
					fmt.Fprintf(e.stderr, "\r%d/%d domains", done.Add(1), len(list))
				}
			}(i, d)
		}
		wg.Wait()
		if len(list) > 1 && isTerminal(e.stderr) {
			fmt.Fprint(e.stderr, "\r\x1b[K")
		}
		elapsed := time.Since(start)
		code := exitOK
		for _, r := range reports {
			if r.Verdict() != "works" {
				code = exitFail
			}
		}
		if ctx.Err() != nil {
			code = exitInterrupted
		}
		if err := probe.Writers.Write(e.stdout, *out, probe.Batch{Reports: reports, Elapsed: elapsed}, probe.Options{Transcript: *transcript}); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		return code
	}
}

// probeEnv starts the harness endpoint a probe negotiates from, as
// domain from on listen, finding servers through res, and returns the
// probe environment and the function that stops it.
func (f *liveFlags) probeEnv(res *resolve.Resolver, from, listen string, timeout time.Duration) (*probe.Env, func(), error) {
	n := sim.NewNetwork()
	res.Timeout = timeout
	n.UseDNS(res)
	ps := probe.Settings()
	f.base = &ps
	ep, dns, err := f.start(from, listen, n, timeout)
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		ep.Close()
		if dns != nil {
			dns.Close()
		}
	}
	_, pki, _ := f.settings()
	env := probe.NewEnv(ep, n)
	env.Resolver, env.PKI, env.Timeout = res, pki, timeout
	if sys, err := x509.SystemCertPool(); err == nil {
		env.System = sys
	}
	return env, stop, nil
}

// readDomains reads a --domains file: a partner list in a format
// 'xmppneg partners' reads, or one domain a line.
func readDomains(path string) ([]string, error) {
	data, err := safefile.Read(path, lyncpartner.MaxListBytes, "")
	if err != nil {
		return nil, err
	}
	if !plainList(data) {
		entries, _, err := lyncpartner.Parse(filepath.Base(path), data)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, en := range entries {
			out = append(out, en.Domain)
		}
		return out, nil
	}
	var out []string
	seen := map[string]bool{}
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if err := sim.CheckDomain(l); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", filepath.Base(path), i+1, err)
		}
		if seen[strings.ToLower(l)] {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", filepath.Base(path), i+1, l)
		}
		seen[strings.ToLower(l)] = true
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no domain", filepath.Base(path))
	}
	return out, nil
}

// plainList reports whether data is one bare word a line: a domain list.
func plainList(data []byte) bool {
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") && strings.ContainsAny(l, " \t,:{[\"'") {
			return false
		}
	}
	return true
}

func setupServe(fs *flag.FlagSet, e *env) func([]string) int {
	domain := fs.String("domain", "", "the harness's domain (required)")
	listen := fs.String("listen", "", "address to listen on, HOST:PORT (required); anything but a loopback address accepts connections from the network")
	transcript := fs.Bool("transcript", false, "print the XML transcript of each negotiation")
	maxConns := fs.Int("max-conns", sim.DefaultMaxConns, "inbound connections served at once; more are refused with <resource-constraint/>")
	perSource := fs.Int("max-per-source", sim.DefaultMaxConnsPerSource, "inbound connections served at once from one IPv4 address or one IPv6 /64")
	directListen := fs.String("direct-tls-listen", "", "also listen for direct TLS (XEP-0368) on this address, HOST:PORT, published as _xmpps-server with --dns-listen (implies direct_tls=true; with direct_tls=true alone, a free port on --listen's host)")
	lf := defineLiveFlags(fs)
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		if *domain == "" || *listen == "" {
			e.errorf("--domain and --listen are required (see 'xmppneg serve --help')")
			return exitUsage
		}
		if err := sim.CheckDomain(*domain); err != nil {
			e.errorf("--domain: %v", err)
			return exitUsage
		}
		if *maxConns < 1 || *perSource < 1 {
			e.errorf("--max-conns and --max-per-source must be at least 1")
			return exitUsage
		}
		lf.maxConns, lf.perSource, lf.directListen = *maxConns, *perSource, *directListen
		lf.logf = e.errorf
		res, ok := lf.dns(e)
		if !ok {
			return exitUsage
		}
		// Listening for SIGINT before anything is printed: a signal that
		// comes as soon as "serving" shows stops serve, never the process.
		ctx, stop := interruptible()
		defer stop()
		// Servers that connect are found again (for dialback, for the
		// answers) as --peer says, or through DNS as real servers are.
		n := sim.NewNetwork()
		n.UseDNS(res)
		ep, dns, err := lf.start(*domain, *listen, n, 0)
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		results := make(chan *sim.Result, 16)
		ep.OnInbound(func(r *sim.Result) { results <- r })
		fmt.Fprintf(e.stdout, "serving %s on %s (%s); interrupt to stop\n", *domain, ep.Addr(), ep.Settings())
		if d := ep.DirectAddr(); d != "" {
			fmt.Fprintf(e.stdout, "direct TLS (XEP-0368) on %s\n", d)
		}
		if !loopback(ep.Addr()) {
			e.errorf("warning: %s is not a loopback address: servers on the network can connect (at most %d at once, %d from one address)", ep.Addr(), *maxConns, *perSource)
		}
		if dns != nil {
			fmt.Fprintf(e.stdout, "DNS: SRV _xmpp-server._tcp.%s on udp %s\n", *domain, dns.Addr())
			if ep.DirectAddr() != "" {
				fmt.Fprintf(e.stdout, "DNS: SRV _xmpps-server._tcp.%s on udp %s\n", *domain, dns.Addr())
			}
		}
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
				// Closing cuts every connection short; their results are
				// still taken (not printed), or the connections would wait
				// to hand them over.
			closing:
				for {
					select {
					case <-results:
					case <-done:
						break closing
					case <-t.C:
						e.errorf("negotiations still open after 5 s; exiting anyway")
						break closing
					}
				}
				if dns != nil {
					dns.Close()
				}
				// Interrupted is how serve ends: 130, as documented and
				// as shells report a SIGINT.
				return exitInterrupted
			}
		}
	}
}
