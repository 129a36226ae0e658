package main

import (
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"strings"

	"xmppneg/certs"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
)

func init() {
	register(&command{
		name:    "server",
		summary: "Start a private real server (prosody, prosody-13, ejabberd, ejabberd-24, jabberd2) on loopback, with its SRV record on a loopback DNS server, until interrupted: something to probe.",
		usage:   "KIND --domain D [--pki DIR] [--dns-listen ADDR] [--harness DOMAIN=HOST:PORT] [--set KNOB=VALUE ...] | KIND --version",
		example: "xmppneg server prosody --domain prosody.test\n" +
			"xmppneg server prosody-13 --version\n" +
			"xmppneg server ejabberd --domain ejabberd.test --set s2s_use_starttls=required --set cert=no-client-auth",
		setup: setupServer,
	})
}

func setupServer(fs *flag.FlagSet, e *env) func([]string) int {
	domain := fs.String("domain", "", "the server's XMPP domain (default KIND.test)")
	pkiDir := fs.String("pki", "pki", "`directory` of the test PKI: its CA is kept if there, else created; the server's and the harness's certificates are issued from it (give the probe the same --pki)")
	dnsListen := fs.String("dns-listen", "127.0.0.1:0", "loopback UDP address of the DNS server that publishes the server's SRV record, and that the server itself asks")
	harness := fs.String("harness", "harness.test=127.0.0.1:15270", "DOMAIN=HOST:PORT where the server finds the harness (the probe's --from and --listen)")
	version := fs.Bool("version", false, "start the server, print the version its process reports about itself, and stop it")
	var knobs stringsFlag
	fs.Var(&knobs, "set", "KNOB=VALUE of the server (see 'xmppneg run --help' scenario keys; repeatable)")
	return func(args []string) int {
		if len(args) != 1 {
			var names []string
			for _, k := range realserver.Kinds() {
				names = append(names, k.Name)
			}
			e.errorf("give the kind of server: %s (see 'xmppneg server --help')", strings.Join(names, ", "))
			return exitUsage
		}
		kind, err := realserver.LookupKind(args[0])
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		m := map[string]string{}
		for _, kv := range knobs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				e.errorf("--set %q is not KNOB=VALUE", kv)
				return exitUsage
			}
			m[k] = v
		}
		setting, err := kind.Parse(m)
		if err != nil {
			e.errorf("--set: %v", err)
			return exitUsage
		}
		hDomain, hAddr, ok := strings.Cut(*harness, "=")
		if !ok || hDomain == "" || hAddr == "" {
			e.errorf("--harness %q is not DOMAIN=HOST:PORT", *harness)
			return exitUsage
		}
		if *domain == "" {
			*domain = kind.Name + ".test"
		}
		// From here on SIGINT stops the server, never the process with the
		// server left running.
		ctx, stop := interruptible()
		defer stop()
		if err := realserver.Require(kind.Name); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		var pki *certs.PKI
		if *version {
			// Nothing is written: the server starts, says, and stops.
			pki, err = certs.New()
		} else if pki, err = certs.LoadCA(*pkiDir); errors.Is(err, iofs.ErrNotExist) {
			pki, err = certs.New()
		}
		if err == nil && !*version {
			// The harness's certificate, for the probe's --pki.
			err = pki.WritePEM(*pkiDir, certs.Valid, hDomain)
		}
		if err != nil {
			e.errorf("--pki %s: %v", *pkiDir, err)
			return exitUsage
		}
		dns, err := loopdns.Start(*dnsListen)
		if err != nil {
			e.errorf("--dns-listen: %v", err)
			return exitUsage
		}
		defer dns.Close()
		if err := dns.Set(hDomain, hAddr); err != nil {
			e.errorf("--harness: %v", err)
			return exitUsage
		}
		srv, err := setting.Start(*domain, pki, dns.Addr())
		if err != nil {
			e.errorf("starting %s: %v", kind.Name, err)
			return exitFail
		}
		reported := ""
		if v, ok := srv.(realserver.Versioned); ok {
			reported = v.Version()
		}
		if *version {
			stopErr := srv.Stop()
			if reported == "" {
				e.errorf("%s did not say which version it is", kind.Name)
				return exitFail
			}
			fmt.Fprintf(e.stdout, "%s: %s (%s package %s from Debian %s)\n", kind.Name, reported, kind.Package, kind.Version, kind.Suite)
			if stopErr != nil {
				e.errorf("stopping %s: %v", kind.Name, stopErr)
				return exitFail
			}
			return exitOK
		}
		if reported != "" {
			reported = ", " + reported
		}
		if err := dns.Set(*domain, srv.Addr()); err != nil {
			srv.Stop()
			e.errorf("%v", err)
			return exitFail
		}
		_, harnessPort, _ := strings.Cut(hAddr, ":")
		fmt.Fprintf(e.stdout, "%s (real %s%s: %s) listens on %s\n", *domain, kind.Name, reported, setting, srv.Addr())
		fmt.Fprintf(e.stdout, "DNS: %s answers SRV _xmpp-server._tcp.%s and finds %s at %s\n", dns.Addr(), *domain, hDomain, hAddr)
		fmt.Fprintf(e.stdout, "certificates: %s (its CA signs the server's and %s's)\n", *pkiDir, hDomain)
		fmt.Fprintf(e.stdout, "probe it:  xmppneg probe --domain %s --resolver %s --pki %s --from %s --listen 127.0.0.1:%s\n", *domain, dns.Addr(), *pkiDir, hDomain, harnessPort)
		fmt.Fprintf(e.stdout, "interrupt (Ctrl-C) to stop it\n")
		<-ctx.Done()
		fmt.Fprintf(e.stdout, "stopping %s\n", *domain)
		if err := srv.Stop(); err != nil {
			e.errorf("stopping %s: %v", kind.Name, err)
			return exitFail
		}
		return exitInterrupted
	}
}
