package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/printable"
	"xmppneg/policy/safefile"
	"xmppneg/policy/serverconf"
	"xmppneg/scenarios/partners"
	"xmppneg/scenarios/rollout"
	"xmppneg/sim"
)

func init() {
	register(&command{
		name:    "diff",
		summary: "Check a change before rollout: two versions of a server's configuration file (Prosody, ejabberd, jabberd2) or of a Lync partner list meet the same partners, and every negotiation whose outcome changes is listed; exit 1 when something that authenticated stops or gets a weaker method.",
		usage:   "--before OLD --after NEW [--partners FILE | --against profiles] [--partner-certs STATES] [--host DOMAIN] [--gateway SPEC] [-o " + rollout.Writers.Usage() + "] [--all]",
		example: "xmppneg diff --before prosody.cfg.lua --after prosody.cfg.lua.new\n" +
			"xmppneg diff --before ejabberd.yml --after ejabberd.yml.new --partners partners.yaml -o junit > diff.xml\n" +
			"xmppneg diff --before partners-2025.ps1 --after partners.ps1 --partners partners-servers.yaml",
		setup: setupDiff,
	})
}

// isServerConfig tells a server's configuration file from a partner list.
func isServerConfig(path string) bool {
	switch strings.ToLower(filepath.Ext(strings.TrimSuffix(strings.TrimSuffix(path, ".new"), ".old"))) {
	case ".lua", ".yml", ".yaml", ".xml":
		return true
	}
	return false
}

func setupDiff(fs *flag.FlagSet, e *env) func([]string) int {
	before := fs.String("before", "", "the `file` as it is now: a server configuration, or a Lync partner list")
	after := fs.String("after", "", "the `file` as it is to be")
	partnersFile := fs.String("partners", "", "YAML `file` of \"partner.domain: profile-or-spec\" lines: the partners to check (default: every shipped profile)")
	against := fs.String("against", "", "profiles: meet every shipped profile (the default without --partners)")
	pcerts := fs.String("partner-certs", "", "also meet each profile with these certificate `states`, comma-separated (such as no-client-auth,self-signed)")
	host := fs.String("host", "", "only this `domain` of the configuration")
	server := fs.String("server", "", "read the configurations as prosody, ejabberd or jabberd2 (default: told from the file names)")
	version := fs.String("server-version", "", "the server version whose loader to mirror (see 'xmppneg explain --help')")
	gateway := fs.String("gateway", "", "with partner lists: the gateway's certificate and knobs, a spec over profile lync2013-gateway")
	ownCert := fs.String("cert", "", "the `state` of ours' certificate, both versions (default: valid, as the files are assumed; no-client-auth is a 2026 Let's Encrypt certificate)")
	all := fs.Bool("all", false, "list every negotiation, not only those that change")
	out := outputFlag(fs, rollout.Writers.Formats()...)
	timeout := fs.Duration("timeout", sim.DefaultTimeout, "deadline of each negotiation")
	jobs := fs.Int("j", 4*runtime.NumCPU(), "negotiations run at once (default: 4 per CPU)")
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		if *before == "" || *after == "" {
			e.errorf("give --before and --after (see 'xmppneg diff --help')")
			return exitUsage
		}
		if *against != "" && *against != "profiles" {
			e.errorf("--against %q: accepted value is profiles", *against)
			return exitUsage
		}
		if *against != "" && *partnersFile != "" {
			e.errorf("give --partners or --against profiles, not both")
			return exitUsage
		}
		if *timeout <= 0 || *jobs < 1 {
			e.errorf("--timeout must be positive and -j at least 1")
			return exitUsage
		}
		var declared map[string]partners.Declared
		if *partnersFile != "" {
			var err error
			if declared, err = partners.LoadDeclared(*partnersFile); err != nil {
				e.errorf("--partners: %v", err)
				return exitUsage
			}
			if len(declared) == 0 {
				e.errorf("--partners %s declares no partner", *partnersFile)
				return exitUsage
			}
		}
		var states []certs.State
		if *pcerts != "" {
			for _, s := range strings.Split(*pcerts, ",") {
				st, err := certs.ParseState(s)
				if err != nil {
					e.errorf("--partner-certs: %v", err)
					return exitUsage
				}
				states = append(states, st)
			}
		}
		var own certs.State
		if *ownCert != "" {
			var err error
			if own, err = certs.ParseState(*ownCert); err != nil {
				e.errorf("--cert: %v", err)
				return exitUsage
			}
		}
		var subjects []rollout.Subject
		var code int
		if isServerConfig(*before) != isServerConfig(*after) {
			e.errorf("--before and --after must both be server configurations or both partner lists")
			return exitUsage
		}
		if isServerConfig(*before) {
			subjects, code = configSubjects(e, *before, *after, *host, serverconf.Options{Server: serverconf.Server(*server), Version: *version}, declared, states)
		} else {
			subjects, code = listSubjects(e, *before, *after, *gateway, declared, states)
		}
		if subjects == nil {
			return code
		}
		if own != "" {
			for i := range subjects {
				for _, sd := range []**rollout.Side{&subjects[i].Before, &subjects[i].After} {
					if *sd == nil {
						continue
					}
					inner := (*sd).Settings
					*sd = &rollout.Side{Label: (*sd).Label, Settings: func(p string) policy.Settings {
						s := inner(p)
						s.Cert = own
						return s
					}}
				}
			}
		}
		ctx, stop := interruptible()
		defer stop()
		rep, err := rollout.Compare(ctx, subjects, rollout.Options{Timeout: *timeout, Jobs: *jobs})
		if ctx.Err() != nil {
			e.errorf("interrupted: nothing to report")
			return exitInterrupted
		}
		if err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		rep.Before, rep.After = *before, *after
		var buf bytes.Buffer
		if err := rollout.Writers.Write(&buf, *out, rep, rollout.Style{All: *all, Paint: e.paint}); err != nil {
			e.errorf("%v", err)
			return exitFail
		}
		e.stdout.Write(buf.Bytes())
		if rep.Summary.Regressions > 0 {
			return exitFail
		}
		return exitOK
	}
}

// diffPartners are the partners a subject meets: the declared ones, or
// every shipped profile (with each extra certificate state).
func diffPartners(declared map[string]partners.Declared, states []certs.State, domainFor func(profile string) string) []rollout.Partner {
	var out []rollout.Partner
	if declared != nil {
		var domains []string
		for d := range declared {
			domains = append(domains, d)
		}
		sort.Strings(domains)
		for _, d := range domains {
			out = append(out, rollout.Partner{Name: d + " (" + declared[d].Label + ")", Domain: d, Settings: declared[d].Settings})
		}
		return out
	}
	for _, p := range policy.Profiles() {
		out = append(out, rollout.Partner{Name: p.Name, Domain: domainFor(p.Name), Settings: p.Settings})
		for _, st := range states {
			s := p.Settings
			s.Cert = st
			out = append(out, rollout.Partner{Name: p.Name + ",cert=" + string(st), Domain: domainFor(p.Name), Settings: s})
		}
	}
	return out
}

func profileDomain(name string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(name) + ".test"
}

// configSubjects reads two versions of a server's configuration: every
// host of either, with its settings toward each partner.
func configSubjects(e *env, before, after, only string, opt serverconf.Options, declared map[string]partners.Declared, states []certs.State) ([]rollout.Subject, int) {
	load := func(path string) (*serverconf.Config, error) {
		c, err := serverconf.Load(path, opt)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	cb, errB := load(before)
	ca, errA := load(after)
	var refused *serverconf.RefusedError
	switch {
	case errors.As(errA, &refused):
		fmt.Fprintf(e.stdout, "%s: %s would refuse to start with the new file: %s\n", refused.Source, refused.Server, printable.String(refused.Reason))
		fmt.Fprintln(e.stdout, "FAIL: every negotiation stops")
		return nil, exitFail
	case errA != nil:
		e.errorf("--after: %s", printable.String(errA.Error()))
		return nil, exitUsage
	case errors.As(errB, &refused):
		fmt.Fprintf(e.stderr, "note: %s would refuse the old file (%s): every host is new\n", refused.Server, printable.String(refused.Reason))
		cb = &serverconf.Config{Server: ca.Server}
	case errB != nil:
		e.errorf("--before: %s", printable.String(errB.Error()))
		return nil, exitUsage
	}
	if cb.Server != ca.Server {
		e.errorf("--before is %s's configuration and --after %s's: compare two versions of one server", cb.Server, ca.Server)
		return nil, exitUsage
	}
	byName := map[string][2]*serverconf.Host{}
	var names []string
	for i, c := range []*serverconf.Config{cb, ca} {
		for _, h := range c.Hosts {
			if h.Disabled {
				continue
			}
			v, ok := byName[h.Name]
			if !ok {
				names = append(names, h.Name)
			}
			v[i] = h
			byName[h.Name] = v
		}
	}
	if only != "" {
		v, ok := byName[strings.ToLower(only)]
		if !ok {
			e.errorf("--host %s: neither version has it (hosts: %s)", only, strings.Join(names, ", "))
			return nil, exitUsage
		}
		names, byName = []string{strings.ToLower(only)}, map[string][2]*serverconf.Host{strings.ToLower(only): v}
	}
	if len(names) == 0 {
		e.errorf("neither version defines an enabled host")
		return nil, exitUsage
	}
	side := func(h *serverconf.Host) *rollout.Side {
		if h == nil {
			return nil
		}
		return &rollout.Side{Label: h.Settings.String(), Settings: h.SettingsFor}
	}
	var out []rollout.Subject
	for _, n := range names {
		v := byName[n]
		out = append(out, rollout.Subject{Name: n, Before: side(v[0]), After: side(v[1]), Partners: diffPartners(declared, states, profileDomain)})
	}
	return out, exitOK
}

// listSubjects reads two versions of a Lync partner list: every entry of
// either, the gateway negotiating with the entry's settings.
func listSubjects(e *env, before, after, gwSpec string, declared map[string]partners.Declared, states []certs.State) ([]rollout.Subject, int) {
	base, _ := policy.LookupProfile("lync2013-gateway")
	gw, err := policy.ParseSpecFrom(base.Settings, gwSpec)
	if err != nil {
		e.errorf("--gateway: %v", err)
		return nil, exitUsage
	}
	read := func(path string) ([]lyncpartner.Entry, error) {
		data, err := safefile.Read(path, lyncpartner.MaxListBytes, "")
		if err != nil {
			return nil, err
		}
		entries, _, err := lyncpartner.Parse(filepath.Base(path), data)
		return entries, err
	}
	eb, err := read(before)
	if err != nil {
		e.errorf("--before: %v", err)
		return nil, exitUsage
	}
	ea, err := read(after)
	if err != nil {
		e.errorf("--after: %v", err)
		return nil, exitUsage
	}
	byDomain := map[string][2]*lyncpartner.Entry{}
	var names []string
	for i, list := range [][]lyncpartner.Entry{eb, ea} {
		for j := range list {
			d := strings.ToLower(list[j].Domain)
			v, ok := byDomain[d]
			if !ok {
				names = append(names, d)
			}
			v[i] = &list[j]
			byDomain[d] = v
		}
	}
	side := func(en *lyncpartner.Entry) *rollout.Side {
		if en == nil {
			return nil
		}
		s := gw
		s.Policy = en.Policy
		return rollout.Fixed(en.Policy.Partner(), s)
	}
	var out []rollout.Subject
	for _, d := range names {
		v := byDomain[d]
		var ps []rollout.Partner
		if declared != nil {
			dec, ok := declared[d]
			if !ok {
				fmt.Fprintf(e.stderr, "note: %s is not in --partners: met with every shipped profile\n", d)
				ps = diffPartners(nil, states, func(string) string { return d })
			} else {
				ps = []rollout.Partner{{Name: dec.Label, Domain: d, Settings: dec.Settings}}
			}
		} else {
			ps = diffPartners(nil, states, func(string) string { return d })
		}
		out = append(out, rollout.Subject{Name: d, Domain: "contoso.test", Before: side(v[0]), After: side(v[1]), Partners: ps})
	}
	if len(out) == 0 {
		e.errorf("neither list has an entry")
		return nil, exitUsage
	}
	return out, exitOK
}
