package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"xmppneg/policy"
	"xmppneg/policy/printable"
	"xmppneg/policy/serverconf"
	"xmppneg/scenarios/partners"
)

// ownPartners is 'partners --gateway config=FILE#HOST': the operator's
// own server, as its file configures it, against a list of partner
// domains; a fix is a line of the file.
//
// probe, when --probe was given, probes the domains nobody declared.
func ownPartners(e *env, list, gateway, profilesFile string, declaredFlags []string, out string, verbose bool, timeout time.Duration, jobs int,
	probe func(ctx context.Context, domains []string) (map[string]*partners.Probed, error)) int {
	if !partners.OwnWriters.Has(out) {
		names := partners.OwnWriters.Names()
		e.errorf("-o %s is for Lync partner lists; with --gateway config=… use %s or %s", out, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
		return exitUsage
	}
	// config=FILE#HOST, then any keys that override the file's settings.
	spec := strings.TrimSpace(gateway)
	ref, rest, _ := strings.Cut(strings.TrimPrefix(spec, "config="), ",")
	c, h, err := serverconf.Resolve(ref, serverconf.Options{})
	var refused *serverconf.RefusedError
	if errors.As(err, &refused) {
		fmt.Fprintf(e.stdout, "%s: %s would refuse to start with this file: %s\n", refused.Source, refused.Server, printable.String(refused.Reason))
		return exitFail
	}
	if err != nil {
		e.errorf("--gateway: %s", printable.String(err.Error()))
		return exitUsage
	}
	if _, err := policy.ParseSpecFrom(h.Settings, rest); err != nil {
		e.errorf("--gateway: %v", err)
		return exitUsage
	}
	over := func(s policy.Settings) policy.Settings {
		s2, _ := policy.ParseSpecFrom(s, rest)
		return s2
	}
	own := partners.Own{Label: ref, Domain: h.Name, Settings: func(p string) policy.Settings { return over(h.SettingsFor(p)) }}
	if h.Name == "*" {
		own.Domain = "ours.test"
	}
	for _, ch := range h.Changes {
		ch := ch
		own.Changes = append(own.Changes, partners.OwnChange{Line: ch.Edit.String(), Knobs: ch.String(),
			Settings: func(p string) policy.Settings {
				s, err := h.SettingsWith(ch.Apply(h.KnobsFor(p)))
				if err != nil {
					return over(h.SettingsFor(p))
				}
				return over(s)
			}})
	}
	domains, err := readDomains(list)
	if err != nil {
		e.errorf("%v", err)
		return exitUsage
	}
	decl, ok := declaredPartners(e, profilesFile, declaredFlags)
	if !ok {
		return exitUsage
	}
	for _, w := range h.Warnings {
		if w.Code == "certificate-assumed" {
			continue
		}
		fmt.Fprintf(e.stderr, "note: %s\n", printable.String(w.String()))
	}
	_ = c
	ctx, stop := interruptible()
	defer stop()
	var probed map[string]*partners.Probed
	if probe != nil {
		var todo []string
		for _, d := range domains {
			if _, ok := decl[strings.ToLower(d)]; !ok {
				todo = append(todo, d)
			}
		}
		if probed, err = probe(ctx, todo); err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
	}
	rep, err := partners.EvaluateOwn(ctx, domains, own, partners.Options{Declared: decl, Probed: probed, Timeout: timeout, Jobs: jobs})
	if ctx.Err() != nil {
		e.errorf("interrupted: nothing to report")
		return exitInterrupted
	}
	if err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	var buf bytes.Buffer
	if err := partners.OwnWriters.Write(&buf, out, rep, partners.Style{Color: e.color, Verbose: verbose}); err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	e.stdout.Write(buf.Bytes())
	// The one rule of partners: any that FAILS, is unreachable or
	// unknown fails the list.
	if !rep.Summary.OK {
		return exitFail
	}
	return exitOK
}
