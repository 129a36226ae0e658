package realserver

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
)

// ProsodySettings are the s2s knobs of Prosody that matter here.
type ProsodySettings struct {
	// RequireEncryption is s2s_require_encryption (Prosody's default: true).
	RequireEncryption bool
	// SecureAuth is s2s_secure_auth: only peers with a valid certificate.
	SecureAuth bool
	// Dialback loads mod_dialback.
	Dialback bool
	// Cert is the state of Prosody's own certificate.
	Cert certs.State
	// DirectTLS makes it listen on s2s_direct_tls_ports too (XEP-0368;
	// Prosody 0.12 also uses _xmpps-server targets when it connects).
	DirectTLS bool
	// Backports runs Prosody 13 (kind prosody-13, from bookworm-backports
	// as install-backports.sh unpacked it) instead of the system's 0.12.
	Backports bool
	// Bidi loads mod_s2s_bidi (XEP-0288), shipped by Prosody 13 (not
	// loaded by Debian's configuration); Backports only.
	Bidi bool
}

func (s ProsodySettings) String() string {
	out := fmt.Sprintf("s2s_require_encryption=%t,s2s_secure_auth=%t,dialback=%t,cert=%s", s.RequireEncryption, s.SecureAuth, s.Dialback, s.Cert)
	if s.DirectTLS {
		out += ",s2s_direct_tls=true"
	}
	if s.Bidi {
		out += ",s2s_bidi=true"
	}
	return out
}

// Policy expresses the settings in the harness's vocabulary: Prosody's
// behaviour with these knobs (policy.ProsodySettings, where each
// observation is written down) and the state of its certificate.
func (s ProsodySettings) Policy() policy.Settings {
	var p policy.Settings
	if s.Backports {
		p = policy.Prosody13Settings(s.RequireEncryption, s.SecureAuth, s.Dialback, s.Bidi)
	} else {
		p = policy.ProsodySettings(s.RequireEncryption, s.SecureAuth, s.Dialback)
	}
	p.Cert, p.DirectTLS = s.Cert, s.DirectTLS
	return p
}

// Prosody is a running private Prosody instance.
type Prosody struct {
	domain   string
	settings ProsodySettings
	dir      string
	port     int
	direct   int // s2s_direct_tls_ports, when DirectTLS
	proc     *process
	version  string
}

// StartProsody starts Prosody for domain with settings s, trusting the CA
// of pki and resolving every other domain through the DNS responder at
// dnsAddr (a loopdns server). It returns once Prosody says that it
// listens for s2s and on its admin socket, or an error with its log; a
// port taken before Prosody could bind it is tried again on another.
func StartProsody(domain string, s ProsodySettings, pki *certs.PKI, dnsAddr string) (*Prosody, error) {
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	if err := Require(s.Kind()); err != nil {
		return nil, err
	}
	if s.Bidi && !s.Backports {
		return nil, fmt.Errorf("realserver: s2s_bidi: Prosody 0.12 has no mod_s2s_bidi (prosody-13 has)")
	}
	if s.Cert == "" {
		s.Cert = certs.Valid
	}
	_, dnsPort, err := net.SplitHostPort(dnsAddr)
	if err != nil {
		return nil, fmt.Errorf("realserver: DNS address %q: %w", dnsAddr, err)
	}
	return startRetrying(func() (*Prosody, error) { return startProsody(domain, s, pki, dnsPort, nil) })
}

// prosodyConfigFunc writes the configuration of an instance in dir
// listening on port (and direct, for direct TLS); nil is the launcher's
// own, from the settings.
type prosodyConfigFunc func(dir string, port, direct int) (string, error)

func startProsody(domain string, s ProsodySettings, pki *certs.PKI, dnsPort string, config prosodyConfigFunc) (p *Prosody, err error) {
	dir, err := os.MkdirTemp("", "xmppneg-prosody-")
	if err != nil {
		return nil, err
	}
	p = &Prosody{domain: domain, settings: s, dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("prosody %s: %w\n%s", domain, err, p.Log()) // the log, before Stop removes it
			p.Stop()
		}
	}()
	for _, d := range []string{"run", "data", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return p, err
		}
	}
	// Without a certificate (cert=missing, a real setting) only the CA
	// it trusts is written, and the host has no ssl.
	var withCert []string
	if s.Cert != certs.Missing {
		withCert = []string{domain}
	}
	if err := pki.WritePEM(filepath.Join(dir, "certs"), s.Cert, withCert...); err != nil {
		return p, err
	}
	if p.port, err = allocPort(); err != nil {
		return p, err
	}
	if s.DirectTLS {
		if p.direct, err = allocPort(); err != nil {
			return p, err
		}
	}
	if config == nil {
		config = func(dir string, port, direct int) (string, error) {
			return prosodyConfig(dir, domain, port, direct, dnsPort, s), nil
		}
	}
	text, err := config(dir, p.port, p.direct)
	if err != nil {
		return p, err
	}
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return p, err
	}
	signals := []signal{
		{name: "s2s port", re: regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("Activated service 's2s' on [127.0.0.1]:%d", p.port)))},
		// The admin socket says nothing when it works, but its server
		// socket is created, and logged, before the s2s port.
		{name: "admin socket", re: regexp.MustCompile(regexp.QuoteMeta("(" + filepath.Join(dir, "run/prosody.sock") + ", 0) created"))},
		{name: "admin socket error", re: regexp.MustCompile(`Unable to (bind|listen on) admin socket`), fatal: true},
		{name: "version", re: prosodyVersionLine},
	}
	wait := []string{"s2s port", "admin socket", "version"}
	if p.direct != 0 {
		signals = append(signals, signal{name: "direct TLS port", re: regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("Activated service 's2s_direct_tls' on [127.0.0.1]:%d", p.direct)))})
		wait = append(wait, "direct TLS port")
	}
	launcher := "prosody"
	if s.Backports {
		launcher = prosody13Launcher()
	}
	if p.proc, err = startProcess(dir, "stdout.log", nil, nil, signals, launcher, "-F", "--config", cfg); err != nil {
		return p, err
	}
	if err := p.proc.await(s.Kind(), startBudget, wait...); err != nil {
		return p, err
	}
	if m := prosodyVersionLine.FindStringSubmatch(p.proc.seenLine("version")); m != nil {
		p.version = "Prosody " + m[1]
	}
	p.proc.settle()
	return p, nil
}

// prosodyVersionLine is how Prosody says its version as it starts.
var prosodyVersionLine = regexp.MustCompile(`Hello and welcome to Prosody version (\S+)`)

// Version is the version Prosody said it was as it started, such as
// "Prosody 13.0.1".
func (p *Prosody) Version() string { return p.version }

// startBudget is how long a server may take to say it is ready. Generous:
// on 2 busy cores (a sweep starting several servers while negotiating
// with others) an ejabberd start took up to 12 s here.
const startBudget = 30 * time.Second

func prosodyConfig(dir, domain string, port, direct int, dnsPort string, s ProsodySettings) string {
	mods := []string{"tls", "saslauth", "disco", "ping", "admin_shell", "admin_socket"}
	disabled := []string{"c2s", "offline"}
	if s.Dialback {
		mods = append(mods, "dialback")
	} else {
		disabled = append(disabled, "dialback")
	}
	if s.Bidi {
		mods = append(mods, "s2s_bidi")
	}
	q := func(xs []string) string { return `"` + strings.Join(xs, `"; "`) + `"` }
	directPorts := ""
	if direct != 0 {
		directPorts = fmt.Sprint(direct)
	}
	hostSSL := fmt.Sprintf("\tssl = { certificate = %q; key = %q }\n", filepath.Join(dir, "certs", domain+".crt"), filepath.Join(dir, "certs", domain+".key"))
	// Without a certificate, no ssl option at all: a global ssl naming
	// only the CA made Prosody offer STARTTLS and fail it ("no shared
	// cipher"), which a Prosody without certificates does not do.
	globalSSL := fmt.Sprintf("ssl = { cafile = %q; capath = false }\n", filepath.Join(dir, "certs/ca.pem"))
	if s.Cert == certs.Missing {
		hostSSL = "\t-- no certificate (cert=missing): no TLS of its own\n"
		globalSSL = ""
	}
	return fmt.Sprintf(`-- Generated by xmppneg for a private test instance.
run_as_root = true
pidfile = %[1]q
data_path = %[2]q
certificates = %[3]q
admin_socket = %[4]q
log = { { levels = { min = "debug" }, to = "console" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
s2s_interfaces = { "127.0.0.1" }
s2s_ports = { %[6]d }
s2s_direct_tls_ports = { %[16]s }
c2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { %[7]s }
modules_disabled = { %[8]s }
storage = "memory"
-- Its own deadline for a stream to authenticate, far from the harness's
-- (1 s in the sweeps, 5 s by default): with both at 5 s they raced, and
-- the same probe came to two outcomes. In the field it is 90 s.
s2s_timeout = 30
s2s_require_encryption = %[9]t
s2s_secure_auth = %[10]t
%[11]s-- Resolve every domain through the harness's DNS responder on loopback;
-- libunbound would otherwise answer NXDOMAIN for .test by itself.
unbound = { resolvconf = false; hoststxt = false; forward = "127.0.0.1@%[12]s"; options = { ["local-zone:"] = "test. transparent" } }
VirtualHost %[13]q
%[17]s`, filepath.Join(dir, "run/prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "certs"),
		filepath.Join(dir, "run/prosody.sock"), "", port, q(mods), q(disabled),
		s.RequireEncryption, s.SecureAuth, globalSSL, dnsPort, domain,
		filepath.Join(dir, "certs", domain+".crt"), filepath.Join(dir, "certs", domain+".key"), directPorts, hostSSL)
}

// Addr returns Prosody's s2s address.
func (p *Prosody) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// DirectAddr is its direct TLS s2s address, or "" without DirectTLS.
func (p *Prosody) DirectAddr() string {
	if p.direct == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", p.direct)
}

// Log returns Prosody's log so far.
func (p *Prosody) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "stdout.log"))
	return string(b)
}

// Stop stops Prosody (SIGTERM, then SIGKILL after 3 s) and removes its
// directory.
func (p *Prosody) Stop() error {
	var err error
	if p.proc != nil {
		err = p.proc.stop(3 * time.Second)
	}
	os.RemoveAll(p.dir)
	return err
}

// Shell runs a command of Prosody's admin shell over its admin socket and
// returns what it printed; a command that fails returns its output as the
// error.
func (p *Prosody) Shell(ctx context.Context, command string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(p.dir, "run/prosody.sock"))
	if err != nil {
		return "", fmt.Errorf("prosody admin socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	var in strings.Builder
	_ = xml.EscapeText(&in, []byte(command))
	if _, err := fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='xmpp:prosody.im/admin' xmlns:stream='http://etherx.jabber.org/streams'><repl-input>%s</repl-input>", in.String()); err != nil {
		return "", err
	}
	dec := xml.NewDecoder(bufio.NewReader(c))
	var out strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			return out.String(), fmt.Errorf("prosody admin socket: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || (se.Name.Local != "repl-output" && se.Name.Local != "repl-result") {
			continue
		}
		var text string
		if err := dec.DecodeElement(&text, &se); err != nil {
			return out.String(), err
		}
		out.WriteString(text)
		if se.Name.Local == "repl-result" {
			for _, a := range se.Attr {
				if a.Name.Local == "type" && a.Value == "error" {
					return out.String(), fmt.Errorf("prosody: %s", strings.TrimSpace(out.String()))
				}
			}
			return out.String(), nil
		}
		out.WriteString("\n")
	}
}

// Ping makes Prosody open (or reuse) its stream to domain and ping it,
// waiting at most timeout for the answer.
func (p *Prosody) Ping(ctx context.Context, domain string, timeout time.Duration) (string, error) {
	return p.Shell(ctx, fmt.Sprintf("xmpp:ping(%q, %q, %d)", p.domain, domain, max(1, int(timeout.Seconds()))))
}

// CloseAll closes Prosody's s2s streams, so that the next negotiation
// starts from nothing.
func (p *Prosody) CloseAll(ctx context.Context) error {
	_, err := p.Shell(ctx, fmt.Sprintf("s2s:closeall(%q)", p.domain))
	return err
}
