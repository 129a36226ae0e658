package realserver

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"xmppneg/certs"
	"xmppneg/policy"
)

// FileSetting is a real server started on an operator's own
// configuration file, so that what the harness predicts from reading the
// file (package serverconf) can be checked against the server running
// that very file. Only what a private instance on loopback needs is
// rewritten: its ports and listeners, the paths of its certificates,
// data, pid file and logs, the CA it trusts and the DNS it resolves
// through; every s2s option stays as the file (and its includes) says.
// Where the file names a certificate for the host, the harness writes
// one in the state Knobs["cert"] says; where it names none, none.
type FileSetting struct {
	// Server is the kind that reads the file ("prosody", "ejabberd").
	Server string
	// File is the configuration file; its includes are read from where
	// it is.
	File string
	// Host is the virtual host the harness negotiates with.
	Host string
	// Knobs are the launcher knobs the file amounts to for Host, as the
	// harness read it (cert included); Predicted their meaning in the
	// harness's vocabulary, the oracle's and the engine's input.
	Knobs     map[string]string
	Predicted policy.Settings
	// Modules is Prosody's global modules_enabled as the file sets it
	// (nil: unset). The admin shell and socket are added to them: they
	// are how the harness makes the server open its s2s streams.
	Modules []string
}

// Kind implements Setting.
func (s FileSetting) Kind() string { return s.Server }

// ID implements Setting: the file's base name and the host, and the
// certificate state when it is not valid.
func (s FileSetting) ID() string {
	id, _, _ := strings.Cut(filepath.Base(s.File), ".")
	id += "@" + s.Host
	if c := s.Knobs["cert"]; c != "" && c != string(certs.Valid) {
		id += "+cert-" + c
	}
	return id
}

// String implements Setting: the file, the host and the knobs it
// amounts to.
func (s FileSetting) String() string {
	var kv []string
	for k, v := range s.Knobs {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return fmt.Sprintf("%s#%s (%s)", s.File, s.Host, strings.Join(kv, ","))
}

// Policy implements Setting: what the harness read in the file.
func (s FileSetting) Policy() policy.Settings { return s.Predicted }

// Start implements Setting: the server on its file, serving s.Host; the
// domain must be s.Host (the file's own name for it is not rewritten).
func (s FileSetting) Start(domain string, pki *certs.PKI, dnsAddr string) (Server, error) {
	// jabberd2's s2s without local ids ("*") serves whatever domain
	// its router gives it.
	if s.Host != "*" && !strings.EqualFold(domain, s.Host) {
		return nil, fmt.Errorf("realserver: %s serves %s, not %s", s.File, s.Host, domain)
	}
	abs, err := filepath.Abs(s.File)
	if err != nil {
		return nil, err
	}
	k, err := LookupKind(s.Server)
	if err != nil {
		return nil, err
	}
	native, err := k.Parse(s.Knobs)
	if err != nil {
		return nil, fmt.Errorf("realserver: %s#%s: %w", s.File, s.Host, err)
	}
	_, dnsPort, err := splitDNS(dnsAddr)
	if err != nil {
		return nil, err
	}
	switch n := native.(type) {
	case ProsodySettings:
		if err := Require("prosody"); err != nil {
			return nil, err
		}
		return startRetrying(func() (*Prosody, error) {
			return startProsody(s.Host, n, pki, dnsPort, func(dir string, port, direct int) (string, error) {
				return prosodyFileConfig(abs, dir, s.Host, port, direct, dnsPort, n.Cert, s.Modules)
			})
		})
	case Jabberd2Settings:
		if err := Require("jabberd2"); err != nil {
			return nil, err
		}
		j, err := startRetrying(func() (*Jabberd2, error) { return startJabberd2(domain, n, pki, dnsPort, abs) })
		if err != nil {
			return nil, err
		}
		return j, nil
	case EjabberdSettings:
		if err := Require("ejabberd"); err != nil {
			return nil, err
		}
		hosts := []EjabberdHost{{Domain: s.Host, Settings: n}}
		x, err := startRetrying(func() (*Ejabberd, error) {
			return startEjabberd(hosts, pki, dnsPort, func(dir string, port int) (string, error) {
				return ejabberdFileConfig(abs, dir, s.Host, port, n.Cert)
			})
		})
		if err != nil {
			return nil, err
		}
		return x, nil
	}
	return nil, fmt.Errorf("realserver: starting %s on its own configuration file is not supported", s.Server)
}

func splitDNS(dnsAddr string) (host, port string, err error) {
	host, port, ok := strings.Cut(dnsAddr, ":")
	if !ok || host != "127.0.0.1" {
		return "", "", fmt.Errorf("realserver: DNS address %q is not 127.0.0.1:PORT", dnsAddr)
	}
	return host, port, nil
}

// prosodyFileConfig is a configuration that includes the operator's file
// and then, in a file of its own (Prosody reads each included file from
// the global section), sets what a private instance needs over it.
func prosodyFileConfig(file, dir, host string, port, direct int, dnsPort string, cert certs.State, modules []string) (string, error) {
	mods := slices.Clone(modules)
	for _, m := range []string{"admin_shell", "admin_socket"} {
		if !slices.Contains(mods, m) {
			mods = append(mods, m)
		}
	}
	q := func(xs []string) string {
		var out []string
		for _, x := range xs {
			out = append(out, strconv.Quote(x))
		}
		return strings.Join(out, "; ")
	}
	directPorts := ""
	if direct != 0 {
		directPorts = fmt.Sprint(direct)
	}
	// Without a certificate of its own it gets no ssl option at all: a
	// global ssl (even one naming only the CA) makes Prosody offer
	// STARTTLS that then fails ("no shared cipher"), which a file without
	// certificates does not do.
	hostSSL, globalSSL := "", ""
	if cert != certs.Missing {
		globalSSL = fmt.Sprintf("ssl = { cafile = %q; capath = false }\n", filepath.Join(dir, "certs/ca.pem"))
		hostSSL = fmt.Sprintf("VirtualHost %q\n\tssl = { certificate = %q; key = %q }\n", host,
			filepath.Join(dir, "certs", host+".crt"), filepath.Join(dir, "certs", host+".key"))
	}
	over := fmt.Sprintf(`-- Written by xmppneg over %[1]s: only what a private instance on
-- loopback needs (ports, paths, logs, the CA it trusts, the DNS it asks).
run_as_root = true
pidfile = %[2]q
data_path = %[3]q
certificates = %[4]q
admin_socket = %[5]q
log = { { levels = { min = "debug" }, to = "console" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
s2s_interfaces = { "127.0.0.1" }
s2s_ports = { %[6]d }
s2s_direct_tls_ports = { %[7]s }
c2s_ports = { }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { %[8]s }
%[9]sunbound = { resolvconf = false; hoststxt = false; forward = "127.0.0.1@%[10]s"; options = { ["local-zone:"] = "test. transparent" } }
%[11]s`, file, filepath.Join(dir, "run/prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "certs"),
		filepath.Join(dir, "run/prosody.sock"), port, directPorts, q(mods), globalSSL, dnsPort, hostSSL)
	overFile := filepath.Join(dir, "xmppneg-overrides.cfg.lua")
	if err := os.WriteFile(overFile, []byte(over), 0o600); err != nil {
		return "", err
	}
	return fmt.Sprintf("-- Written by xmppneg: the operator's file, then what a private instance needs.\nInclude %q\nInclude %q\n", file, overFile), nil
}

// ejabberdFileConfig is the operator's ejabberd.yml with its listeners,
// certificate files, CA file, log settings and DNS timeouts replaced, and
// its included files named by absolute path.
func ejabberdFileConfig(file, dir, host string, port int, cert certs.State) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("%s: not a mapping of options", file)
	}
	top := doc.Content[0]
	certfiles := []string{}
	if cert != certs.Missing {
		certfiles = append(certfiles, filepath.Join(dir, "certs", host+".pem"))
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "listen", "certfiles", "ca_file", "loglevel", "log_rotate_count", "hide_sensitive_log_data", "acme",
			"s2s_dns_timeout", "s2s_dns_retries", "s2s_max_retry_delay", "s2s_certfile":
			continue // replaced below (s2s_certfile by certfiles)
		case "include_config_file":
			absolutize(v, filepath.Dir(file))
		}
		kept = append(kept, k, v)
	}
	top.Content = kept
	set := func(key string, value any) error {
		var n yaml.Node
		if err := n.Encode(value); err != nil {
			return err
		}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &n)
		return nil
	}
	for _, kv := range []struct {
		k string
		v any
	}{
		{"listen", []map[string]any{{"port": port, "ip": "127.0.0.1", "module": "ejabberd_s2s_in", "max_stanza_size": 524288}}},
		{"certfiles", certfiles},
		{"ca_file", filepath.Join(dir, "certs", "ca.pem")},
		{"loglevel", "info"},
		{"log_rotate_count", 0},
		{"hide_sensitive_log_data", false},
		{"acme", map[string]any{"auto": false}},
		{"s2s_dns_timeout", 2},
		{"s2s_dns_retries", 1},
		{"s2s_max_retry_delay", 1},
	} {
		if err := set(kv.k, kv.v); err != nil {
			return "", err
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return "", err
	}
	return "# Written by xmppneg over " + file + ": only listeners, certificate and log paths, the CA and DNS timeouts replaced.\n" + string(out), nil
}

// absolutize rewrites the paths of include_config_file (a path, a list
// of them, or a mapping from path to options) relative to dir.
func absolutize(n *yaml.Node, dir string) {
	fix := func(s *yaml.Node) {
		if s.Kind == yaml.ScalarNode && s.Value != "" && !filepath.IsAbs(s.Value) {
			s.Value = filepath.Join(dir, s.Value)
		}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		fix(n)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			fix(c)
		}
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			fix(n.Content[i])
		}
	}
}

// fileS2S is the operator's s2s.xml with what a private instance needs
// written over it: the router it connects to (address, user, password,
// quick retries), its listening address and port, its pid file, its log
// (to standard output, where readiness is read), the certificate file
// (the harness's, or none when it has none) and the CA chain; every other
// element, comments included, as the file has it.
func (j *Jabberd2) fileS2S(file, pem string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	text := map[string]string{
		"s2s/pidfile":       filepath.Join(j.dir, "s2s.pid"),
		"s2s/router/ip":     "127.0.0.1",
		"s2s/router/port":   strconv.Itoa(j.routerPort),
		"s2s/router/user":   "jabberd",
		"s2s/router/pass":   j.routerSecret,
		"s2s/local/ip":      "127.0.0.1",
		"s2s/local/port":    strconv.Itoa(j.port),
		"s2s/local/pemfile": pem,
		"s2s/local/cachain": filepath.Join(j.dir, "certs", "ca.pem"),
	}
	// Written where the file has none, before the end of their parent.
	missing := map[string][]string{
		"s2s/router": {"ip", "port", "user", "pass", "retry"},
		"s2s/local":  {"ip", "port"},
		"s2s":        {"router", "pidfile", "log"},
	}
	if pem != "" {
		missing["s2s/local"] = append(missing["s2s/local"], "pemfile")
	}
	inject := map[string]string{
		"s2s/router/retry": "<retry><init>10</init><lost>0</lost><sleep>1</sleep></retry>",
		"s2s/log":          "<log type='stdout'/>",
		"s2s/router": fmt.Sprintf("<router><ip>127.0.0.1</ip><port>%d</port><user>jabberd</user><pass>%s</pass><retry><init>10</init><lost>0</lost><sleep>1</sleep></retry></router>",
			j.routerPort, j.routerSecret),
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	var path []string
	seen := map[string]bool{}
	skip := 0 // depth of an element being replaced
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			p := strings.Join(path, "/")
			if skip > 0 {
				skip++
				continue
			}
			seen[p] = true
			if v, ok := text[p]; ok {
				if v != "" {
					if err := enc.EncodeElement(v, xml.StartElement{Name: t.Name}); err != nil {
						return "", err
					}
				}
				skip = 1
				continue
			}
			if p == "s2s/log" {
				enc.Flush()
				out.WriteString(inject[p])
				skip = 1
				continue
			}
			if err := enc.EncodeToken(t); err != nil {
				return "", err
			}
		case xml.EndElement:
			p := strings.Join(path, "/")
			path = path[:len(path)-1]
			if skip > 0 {
				skip--
				continue
			}
			for _, child := range missing[p] {
				c := p + "/" + child
				if seen[c] {
					continue
				}
				if v, ok := inject[c]; ok {
					enc.Flush()
					out.WriteString(v)
				} else if err := enc.EncodeElement(text[c], xml.StartElement{Name: xml.Name{Local: child}}); err != nil {
					return "", err
				}
			}
			if err := enc.EncodeToken(t); err != nil {
				return "", err
			}
		default:
			if skip > 0 {
				continue
			}
			if _, ok := tok.(xml.ProcInst); ok {
				continue // the encoder writes no declaration of its own; none is needed
			}
			if err := enc.EncodeToken(xml.CopyToken(tok)); err != nil {
				return "", err
			}
		}
	}
	if err := enc.Flush(); err != nil {
		return "", err
	}
	return out.String(), nil
}
