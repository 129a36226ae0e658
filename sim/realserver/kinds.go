package realserver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"xmppneg/certs"
	"xmppneg/policy"
)

// Server is a running real server as the harness negotiates with it.
type Server interface {
	// Domain is the XMPP domain it serves.
	Domain() string
	// Addr is its s2s address on loopback.
	Addr() string
	// Trigger makes it open its s2s stream to domain.
	Trigger(ctx context.Context, domain string) error
	// Log is what it has logged so far.
	Log() string
	// Stop stops it and removes its files.
	Stop() error
}

// Setting is one configuration of a real server.
type Setting interface {
	// Kind is the name of the server, such as "prosody".
	Kind() string
	// ID is a short name for the setting, usable in test ids.
	ID() string
	// String lists the server's own knobs and their values.
	String() string
	// Policy is the setting in the harness's vocabulary, for the oracle.
	Policy() policy.Settings
	// Start launches the server for domain with this setting, trusting
	// the CA of pki and resolving names through the DNS responder at
	// dnsAddr.
	Start(domain string, pki *certs.PKI, dnsAddr string) (Server, error)
}

// Kind is a real server implementation the harness can launch.
type Kind struct {
	Name string
	// Aliases are other names of the kind: "prosody-0.12" for "prosody".
	Aliases []string
	// Package is the Debian package it comes from, and Version the
	// version this harness was checked against; Suite is the Debian suite
	// ("bookworm", or "bookworm-backports" for the packages unpacked
	// beside the system's by install-backports.sh).
	Package, Version, Suite string
	// Keys are the knobs a scenario file may set, each with its accepted
	// values.
	Keys []Key
	// Sweep is every combination of knobs the interop suites run.
	Sweep func() []Setting
	parse func(map[string]string) (Setting, error)
	// share, for a kind whose one process can serve several settings as
	// hosts of their own, says which settings can go together: those
	// with the same non-empty key; startShared starts them.
	share       func(Setting) string
	startShared func(settings []Setting, domains []string, pki *certs.PKI, dnsAddr string) ([]Server, error)
}

// ShareKey returns the process s may share with other settings: settings
// whose keys are equal and not empty can be started together by
// StartShared, one process serving each as a host of its own domain.
func ShareKey(s Setting) string {
	k, err := LookupKind(s.Kind())
	if err != nil || k.share == nil {
		return ""
	}
	if key := k.share(s); key != "" {
		return k.Name + " " + key
	}
	return ""
}

// StartShared starts one process of their kind serving settings[i] as
// domains[i]; the settings must have the same ShareKey. The process
// stops once every Server returned has been stopped.
func StartShared(settings []Setting, domains []string, pki *certs.PKI, dnsAddr string) ([]Server, error) {
	if len(settings) == 0 || len(settings) != len(domains) {
		return nil, fmt.Errorf("realserver: %d settings for %d domains", len(settings), len(domains))
	}
	key := ShareKey(settings[0])
	for _, s := range settings[1:] {
		if ShareKey(s) != key || key == "" {
			return nil, fmt.Errorf("realserver: %s and %s cannot share a process", settings[0], s)
		}
	}
	if len(settings) == 1 {
		srv, err := settings[0].Start(domains[0], pki, dnsAddr)
		if err != nil {
			return nil, err
		}
		return []Server{srv}, nil
	}
	k, _ := LookupKind(settings[0].Kind())
	return k.startShared(settings, domains, pki, dnsAddr)
}

// Key is one knob of a real server.
type Key struct {
	Name, Values, Default string
}

var kinds = []*Kind{prosodyKind, prosody13Kind, ejabberdKind, ejabberd24Kind, jabberd2Kind}

// Versioned is a Server that tells the version its process reported
// about itself as it started (Prosody's "Hello and welcome to Prosody
// version …", ejabberd's own ejabberd_option:version()).
type Versioned interface {
	Version() string
}

// Kinds lists the real servers the harness can launch.
func Kinds() []*Kind { return append([]*Kind{}, kinds...) }

// LookupKind returns the kind named name.
func LookupKind(name string) (*Kind, error) {
	var names []string
	for _, k := range kinds {
		if k.Name == name || slices.Contains(k.Aliases, name) {
			return k, nil
		}
		names = append(names, k.Name)
	}
	return nil, fmt.Errorf("unknown server %q: accepted values are %s", name, strings.Join(names, ", "))
}

// KeyNames lists the names of the kind's knobs.
func (k *Kind) KeyNames() []string {
	var out []string
	for _, key := range k.Keys {
		out = append(out, key.Name)
	}
	return out
}

// Parse reads a setting from knob values; knobs not given keep their
// defaults. An error names the knob and its accepted values.
func (k *Kind) Parse(knobs map[string]string) (Setting, error) {
	full := map[string]string{}
	for _, key := range k.Keys {
		full[key.Name] = key.Default
	}
	var unknown []string
	for name, v := range knobs {
		if _, ok := full[name]; !ok {
			unknown = append(unknown, name)
			continue
		}
		full[name] = v
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s has no knob %q (accepted: %s)", k.Name, unknown[0], strings.Join(k.KeyNames(), ", "))
	}
	return k.parse(full)
}

func (k *Kind) knobError(name, value string) error {
	for _, key := range k.Keys {
		if key.Name == name {
			return fmt.Errorf("%s: invalid value %q: accepted values are %s", name, value, key.Values)
		}
	}
	return fmt.Errorf("%s: invalid value %q", name, value)
}

var prosodyKind = newProsodyKind(false)

// prosody13Kind is Prosody 13 from bookworm-backports.
var prosody13Kind = newProsodyKind(true)

func newProsodyKind(backports bool) *Kind {
	k := &Kind{
		Name: "prosody", Aliases: []string{"prosody-0.12"}, Package: "prosody", Version: "0.12", Suite: "bookworm",
		Keys: []Key{
			{"s2s_require_encryption", "true, false", "true"},
			{"s2s_secure_auth", "true, false", "false"},
			{"dialback", "true, false (mod_dialback loaded or not)", "true"},
			{"cert", strings.Join(stateNames(), ", "), "valid"},
			{"s2s_direct_tls", "true, false (also listen on s2s_direct_tls_ports, XEP-0368)", "false"},
		},
	}
	if backports {
		k.Name, k.Aliases, k.Version, k.Suite = "prosody-13", nil, "13.0", "bookworm-backports"
		k.Keys = append(k.Keys, Key{"s2s_bidi", "true, false (mod_s2s_bidi loaded or not, XEP-0288)", "false"})
	}
	k.Sweep = func() []Setting {
		var out []Setting
		for _, enc := range []bool{true, false} {
			for _, db := range []bool{true, false} {
				out = append(out, ProsodySettings{RequireEncryption: enc, Dialback: db, Cert: certs.Valid, Backports: backports})
			}
		}
		out = append(out, ProsodySettings{RequireEncryption: true, SecureAuth: true, Dialback: true, Cert: certs.Valid, Backports: backports})
		if backports {
			out = append(out, ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid, Backports: true, Bidi: true})
		}
		return out
	}
	k.parse = func(m map[string]string) (Setting, error) {
		s := ProsodySettings{Backports: backports}
		var err error
		knobs := map[string]*bool{"s2s_require_encryption": &s.RequireEncryption, "s2s_secure_auth": &s.SecureAuth, "dialback": &s.Dialback, "s2s_direct_tls": &s.DirectTLS}
		if backports {
			knobs["s2s_bidi"] = &s.Bidi
		}
		for name, dst := range knobs {
			if *dst, err = policy.ParseBool(m[name]); err != nil {
				return nil, k.knobError(name, m[name])
			}
		}
		if s.Cert, err = certs.ParseState(m["cert"]); err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		return s, nil
	}
	return k
}

var ejabberdKind = newEjabberdKind(false)

// ejabberd24Kind is ejabberd 24.12 from bookworm-backports.
var ejabberd24Kind = newEjabberdKind(true)

func newEjabberdKind(backports bool) *Kind {
	k := &Kind{
		Name: "ejabberd", Aliases: []string{"ejabberd-23"}, Package: "ejabberd", Version: "23.01", Suite: "bookworm",
		Keys: []Key{
			{"s2s_use_starttls", "false, optional, required", "false"},
			{"dialback", "true, false (mod_s2s_dialback listed or not)", "true"},
			{"cert", strings.Join(stateNames(), ", "), "valid"},
		},
	}
	if backports {
		k.Name, k.Aliases, k.Version, k.Suite = "ejabberd-24", nil, "24.12", "bookworm-backports"
		k.Keys = append(k.Keys, Key{"bidi", "true, false (mod_s2s_bidi listed or not, XEP-0288)", "false"})
	}
	k.Sweep = func() []Setting {
		var out []Setting
		for _, tls := range []string{"false", "optional", "required"} {
			for _, db := range []bool{true, false} {
				out = append(out, EjabberdSettings{StartTLS: tls, Dialback: db, Cert: certs.Valid, Backports: backports})
			}
		}
		if backports {
			out = append(out, EjabberdSettings{StartTLS: "optional", Dialback: true, Cert: certs.Valid, Backports: true, Bidi: true})
		}
		return out
	}
	k.share = func(s Setting) string {
		if es, ok := s.(EjabberdSettings); !ok || es.Cert == certs.WrongName {
			return "" // it would present another host's certificate
		}
		return "hosts"
	}
	k.parse = func(m map[string]string) (Setting, error) {
		s := EjabberdSettings{Backports: backports}
		var err error
		switch v := strings.ToLower(m["s2s_use_starttls"]); v {
		case "false", "optional", "required":
			s.StartTLS = v
		default:
			return nil, k.knobError("s2s_use_starttls", m["s2s_use_starttls"])
		}
		if s.Dialback, err = policy.ParseBool(m["dialback"]); err != nil {
			return nil, k.knobError("dialback", m["dialback"])
		}
		if backports {
			if s.Bidi, err = policy.ParseBool(m["bidi"]); err != nil {
				return nil, k.knobError("bidi", m["bidi"])
			}
		}
		if s.Cert, err = certs.ParseState(m["cert"]); err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		return s, nil
	}
	return k
}

var jabberd2Kind = &Kind{
	Name: "jabberd2", Package: "jabberd2", Version: "2.7", Suite: "bookworm",
	Keys: []Key{
		{"pemfile", "true, false (a certificate: TLS offered; without one, no TLS and pre-1.0 streams)", "true"},
		{"require_tls", "true, false (<security><require_tls>)", "false"},
		{"cert", strings.Join(stateNames(), ", "), "valid"},
	},
	Sweep: func() []Setting {
		return []Setting{
			Jabberd2Settings{PEMFile: true, Cert: certs.Valid},
			Jabberd2Settings{PEMFile: true, RequireTLS: true, Cert: certs.Valid},
			Jabberd2Settings{PEMFile: false, Cert: certs.Missing},
		}
	},
}

// startEjabberdShared is the startShared of both ejabberd kinds.
func startEjabberdShared(settings []Setting, domains []string, pki *certs.PKI, dnsAddr string) ([]Server, error) {
	hosts := make([]EjabberdHost, len(settings))
	for i, s := range settings {
		hosts[i] = EjabberdHost{Domain: domains[i], Settings: s.(EjabberdSettings)}
	}
	x, err := StartEjabberdHosts(hosts, pki, dnsAddr)
	if err != nil {
		return nil, err
	}
	return x.Hosts(), nil
}

func init() {
	ejabberdKind.startShared = startEjabberdShared
	ejabberd24Kind.startShared = startEjabberdShared
	jabberd2Kind.parse = func(m map[string]string) (Setting, error) {
		var s Jabberd2Settings
		var err error
		if s.PEMFile, err = policy.ParseBool(m["pemfile"]); err != nil {
			return nil, jabberd2Kind.knobError("pemfile", m["pemfile"])
		}
		if s.RequireTLS, err = policy.ParseBool(m["require_tls"]); err != nil {
			return nil, jabberd2Kind.knobError("require_tls", m["require_tls"])
		}
		if s.Cert, err = certs.ParseState(m["cert"]); err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		// No certificate is no pemfile: the launcher writes none, and
		// jabberd2 has no TLS (found by reading the launcher's own s2s.xml
		// back, launcher_config_test.go).
		if !s.PEMFile || s.Cert == certs.Missing {
			s.PEMFile, s.Cert = false, certs.Missing
		}
		return s, nil
	}
}

func stateNames() []string {
	var out []string
	for _, st := range certs.States {
		out = append(out, string(st))
	}
	return out
}

// Kind implements Setting.
func (s ProsodySettings) Kind() string {
	if s.Backports {
		return "prosody-13"
	}
	return "prosody"
}

// ID implements Setting: the knobs that are on, such as
// "require-encryption+dialback".
func (s ProsodySettings) ID() string {
	var on []string
	for _, k := range []struct {
		on   bool
		name string
	}{{s.RequireEncryption, "require-encryption"}, {s.SecureAuth, "secure-auth"}, {s.Dialback, "dialback"}, {s.Bidi, "bidi"}} {
		if k.on {
			on = append(on, k.name)
		}
	}
	if len(on) == 0 {
		on = []string{"plain"}
	}
	if s.Cert != certs.Valid && s.Cert != "" {
		on = append(on, "cert-"+string(s.Cert))
	}
	return strings.Join(on, "+")
}

// Start implements Setting.
func (s ProsodySettings) Start(domain string, pki *certs.PKI, dnsAddr string) (Server, error) {
	p, err := StartProsody(domain, s, pki, dnsAddr)
	if err != nil {
		return nil, err // not a nil *Prosody in a non-nil Server
	}
	return p, nil
}

// Kind implements Setting.
func (s EjabberdSettings) Kind() string {
	if s.Backports {
		return "ejabberd-24"
	}
	return "ejabberd"
}

// ID implements Setting, such as "starttls-optional+dialback".
func (s EjabberdSettings) ID() string {
	id := "starttls-" + s.StartTLS
	if s.Dialback {
		id += "+dialback"
	}
	if s.Bidi {
		id += "+bidi"
	}
	if s.Cert != certs.Valid && s.Cert != "" {
		id += "+cert-" + string(s.Cert)
	}
	return id
}

// Start implements Setting.
func (s EjabberdSettings) Start(domain string, pki *certs.PKI, dnsAddr string) (Server, error) {
	x, err := StartEjabberd(domain, s, pki, dnsAddr)
	if err != nil {
		return nil, err // not a nil *Ejabberd in a non-nil Server
	}
	return x, nil
}

// Domain implements Server.
func (p *Prosody) Domain() string { return p.domain }

// Trigger makes Prosody open its stream to domain by sending a message.
func (p *Prosody) Trigger(ctx context.Context, domain string) error {
	cmd := fmt.Sprintf(`>prosody.core_post_stanza(prosody.hosts[%q], require"util.stanza".message({from=%q, to=%q, type="chat"}):text_tag("body", "xmppneg"))`,
		p.domain, p.domain, "someone@"+domain)
	_, err := p.Shell(ctx, cmd)
	return err
}
