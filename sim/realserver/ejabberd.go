package realserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
)

// EjabberdSettings are the s2s knobs of ejabberd that matter here.
type EjabberdSettings struct {
	// StartTLS is s2s_use_starttls: "false", "optional" or "required".
	StartTLS string
	// Dialback loads mod_s2s_dialback.
	Dialback bool
	// Cert is the state of ejabberd's own certificate.
	Cert certs.State
}

func (s EjabberdSettings) String() string {
	return fmt.Sprintf("s2s_use_starttls=%s,mod_s2s_dialback=%t,cert=%s", s.StartTLS, s.Dialback, s.Cert)
}

// Policy expresses the settings in the harness's vocabulary: ejabberd's
// behaviour with these knobs (policy.EjabberdSettings, where each
// observation is written down) and the state of its certificate.
func (s EjabberdSettings) Policy() policy.Settings {
	tls := map[string]policy.Level{"false": policy.NotSupported, "optional": policy.Optional, "required": policy.Required}[s.StartTLS]
	p := policy.EjabberdSettings(tls, s.Dialback)
	p.Cert = s.Cert
	return p
}

// Ejabberd is a running private ejabberd instance: a plain erl node with
// no distribution and no epmd, whose Erlang shell on standard input
// makes it send stanzas.
type Ejabberd struct {
	domain   string
	settings EjabberdSettings
	dir      string
	port     int
	proc     *process
	mu       sync.Mutex
	stdin    io.WriteCloser
}

// StartEjabberd starts ejabberd for domain with settings s, trusting the
// CA of pki, resolving every other domain through the loopdns responder
// at dnsAddr and talking s2s only to *.test domains.
func StartEjabberd(domain string, s EjabberdSettings, pki *certs.PKI, dnsAddr string) (*Ejabberd, error) {
	if err := Require("ejabberd"); err != nil {
		return nil, err
	}
	x, err := startEjabberd(domain, s, pki, dnsAddr)
	var slow *slowStart
	if errors.As(err, &slow) {
		// Once in a while (a few starts in thousands, on 2 busy cores)
		// the Erlang shell never takes its input: a second start has
		// always come up. A server that fails otherwise is not retried.
		x, err = startEjabberd(domain, s, pki, dnsAddr)
	}
	return x, err
}

// slowStart is a start that came to no answer within its budget.
type slowStart struct{ err error }

func (e *slowStart) Error() string { return e.err.Error() }

func startEjabberd(domain string, s EjabberdSettings, pki *certs.PKI, dnsAddr string) (_ *Ejabberd, err error) {
	if s.Cert == "" {
		s.Cert = certs.Valid
	}
	switch s.StartTLS {
	case "false", "optional", "required":
	default:
		return nil, fmt.Errorf("realserver: s2s_use_starttls %q: accepted values are false, optional, required", s.StartTLS)
	}
	dir, err := os.MkdirTemp("", "xmppneg-ejabberd-")
	if err != nil {
		return nil, err
	}
	defer removeOnError(dir, &err)
	x := &Ejabberd{domain: domain, settings: s, dir: dir}
	certDir := filepath.Join(dir, "certs")
	// Without a certificate (cert=missing) only the CA it trusts.
	var withCert []string
	if s.Cert != certs.Missing {
		withCert = []string{domain}
	}
	if err := pki.WritePEM(certDir, s.Cert, withCert...); err != nil {
		return nil, err
	}
	if s.Cert != certs.Missing {
		// ejabberd wants certificate, key and chain in one file.
		var bundle []byte
		for _, f := range []string{domain + ".crt", domain + ".key", "ca.pem"} {
			b, err := os.ReadFile(filepath.Join(certDir, f))
			if err != nil {
				return nil, err
			}
			bundle = append(bundle, b...)
		}
		if err := os.WriteFile(filepath.Join(certDir, domain+".pem"), bundle, 0o600); err != nil {
			return nil, err
		}
	}
	if x.port, err = freePort(); err != nil {
		return nil, err
	}
	host, port, ok := strings.Cut(dnsAddr, ":")
	if !ok || host != "127.0.0.1" {
		return nil, fmt.Errorf("realserver: DNS address %q is not 127.0.0.1:PORT", dnsAddr)
	}
	inetrc := fmt.Sprintf("{resolv_conf, \"\"}.\n{nameserver, {127,0,0,1}, %s}.\n{timeout, 1000}.\n{retry, 2}.\n{lookup, [file, dns]}.\n{host, {127,0,0,1}, [\"localhost\"]}.\n", port)
	if err := os.WriteFile(filepath.Join(dir, "inetrc"), []byte(inetrc), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ejabberd.yml"), []byte(ejabberdConfig(dir, domain, x.port, s)), 0o644); err != nil {
		return nil, err
	}
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return nil, err
	}
	libs, _ := filepath.Glob("/usr/lib/*/ejabberd-*")
	env := []string{
		"ERL_INETRC=" + filepath.Join(dir, "inetrc"),
		"EJABBERD_CONFIG_PATH=" + filepath.Join(dir, "ejabberd.yml"),
		"EJABBERD_LOG_PATH=" + filepath.Join(dir, "ejabberd.log"),
		"ERL_LIBS=" + filepath.Dir(libs[0]),
		"ERL_CRASH_DUMP_BYTES=0",
	}
	x.proc, x.stdin, err = startShell(spool, env, "erl", "+K", "true", "-mnesia", "dir", `"`+spool+`"`, "-s", "ejabberd")
	if err != nil {
		return nil, err
	}
	// Budgets are generous: on 2 busy cores (a sweep starting several
	// servers while negotiating with others) a start took up to 12 s here.
	// The log is read before Stop removes it.
	if err := waitListening(x.proc, x.Addr(), 30*time.Second); err != nil {
		err = fmt.Errorf("ejabberd %s: %v\n%s", domain, err, x.Log())
		x.Stop()
		return nil, err
	}
	// With a certificate for another name, ejabberd has none for its
	// domain and uses its default one: that is waited for instead.
	if err := x.waitReady(30*time.Second, s.Cert != certs.WrongName); err != nil {
		var slow *slowStart
		err = fmt.Errorf("ejabberd %s: %w\n%s", domain, err, x.Log())
		if errors.As(err, &slow) {
			err = &slowStart{err}
		}
		x.Stop()
		return nil, err
	}
	return x, nil
}

func ejabberdConfig(dir, domain string, port int, s EjabberdSettings) string {
	dialback := ""
	if s.Dialback {
		dialback = "  mod_s2s_dialback: {}\n"
	}
	certfiles := fmt.Sprintf("%q", filepath.Join(dir, "certs", domain+".pem"))
	if s.Cert == certs.Missing {
		certfiles = ""
	}
	return fmt.Sprintf(`# Generated by xmppneg for a private test instance.
hosts: [%[1]q]
loglevel: info
log_rotate_count: 0
hide_sensitive_log_data: false
certfiles: [%[2]s]
ca_file: %[3]q
acme: {auto: false}
s2s_use_starttls: %[4]s
s2s_access: s2s
s2s_dns_timeout: 2
s2s_dns_retries: 1
outgoing_s2s_timeout: 5
s2s_max_retry_delay: 1
negotiation_timeout: 30
listen:
  - {port: %[5]d, ip: "127.0.0.1", module: ejabberd_s2s_in, max_stanza_size: 524288}
acl:
  local: {user_regexp: ""}
  harness_servers: {server_regexp: "\\.test$"}
access_rules:
  local: {allow: local}
  # s2s only with the harness's .test domains: nothing else is ever dialled.
  s2s: {allow: harness_servers}
modules:
  mod_admin_extra: {}
  mod_disco: {}
  mod_ping: {}
  mod_version: {}
%[6]s`, domain, certfiles, filepath.Join(dir, "certs", "ca.pem"), s.StartTLS, port, dialback)
}

// readyMark is what ejabberd's shell prints once it is ready (waitReady).
const readyMark = "xmppneg-ready"

// waitReady waits until ejabberd can open s2s streams as it will for
// the negotiations. Its s2s port accepts connections before it can: a
// message sent too early is dropped with {aborted,{no_exists,[route,...]}}
// or {aborted,{no_exists,[s2s,...]}} (its routing tables are not there
// yet), and a stream opened too early presents no client certificate
// (ejabberd_pkix has not loaded it yet), so that EXTERNAL is not offered
// to it: all three seen here right after start. Its own shell is asked to
// say when the tables and the certificate are there.
//
// cert says whether the certificate for its domain is waited for, or
// (for a certificate that names another domain) its default one.
func (x *Ejabberd) waitReady(within time.Duration, cert bool) error {
	certCheck := "catch ejabberd_pkix:get_certfile()"
	switch {
	case x.settings.Cert == certs.Missing:
		certCheck = "{ok, none}" // it has none to wait for
	case cert:
		certCheck = fmt.Sprintf("catch ejabberd_pkix:get_certfile_no_default(<<\"%s\">>)", x.domain)
	}
	x.mu.Lock()
	_, err := fmt.Fprintf(x.stdin, "(fun W(0) -> io:format(\"xmppneg-not-ready~n\"); W(N) -> "+
		"case {[route, s2s] -- mnesia:system_info(tables), %s} of "+
		"{[], {ok, _}} -> io:format(\"%s~n\"); _ -> timer:sleep(20), W(N-1) end end)(%d).\n",
		certCheck, readyMark, within/(20*time.Millisecond))
	x.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing to its shell: %w", err)
	}
	deadline := time.Now().Add(within + time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out, _ := os.ReadFile(filepath.Join(x.dir, "spool", "stdout.log"))
		switch {
		case strings.Contains(string(out), readyMark+"\n"):
			return nil
		case strings.Contains(string(out), "xmppneg-not-ready"):
			return fmt.Errorf("its routing tables or its certificate were not ready within %s", within)
		case time.Now().After(deadline):
			return &slowStart{fmt.Errorf("its shell did not answer within %s", within)}
		}
		select {
		case <-x.proc.done:
			return fmt.Errorf("exited while starting (%v): %s", x.proc.err, criticalLines(x.Log()))
		case <-tick.C:
		}
	}
}

// criticalLines picks out of ejabberd's log the lines that say why it
// stopped: its errors and critical messages.
func criticalLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if (strings.Contains(l, "[critical]") || strings.Contains(l, "[error]") || strings.Contains(l, "[warning] Invalid certificate")) && !strings.Contains(l, "> ") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}

// startShell starts a process whose standard input stays open for
// commands.
func startShell(dir string, env []string, name string, args ...string) (*process, io.WriteCloser, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	p, err := startProcessStdin(dir, "stdout.log", env, r, name, args...)
	r.Close()
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	return p, w, nil
}

// Addr returns ejabberd's s2s address.
func (x *Ejabberd) Addr() string { return fmt.Sprintf("127.0.0.1:%d", x.port) }

// Log returns ejabberd's log so far.
func (x *Ejabberd) Log() string {
	b, _ := os.ReadFile(filepath.Join(x.dir, "ejabberd.log"))
	o, _ := os.ReadFile(filepath.Join(x.dir, "spool", "stdout.log"))
	return string(b) + string(o)
}

// Send makes ejabberd send a chat message from its domain to jid, which
// opens its s2s stream to jid's domain.
func (x *Ejabberd) Send(jid string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, err := fmt.Fprintf(x.stdin, "mod_admin_extra:send_message(<<\"chat\">>, <<\"admin@%s\">>, <<\"%s\">>, <<\"\">>, <<\"xmppneg\">>).\n", x.domain, jid)
	return err
}

// Stop stops ejabberd (SIGTERM, then SIGKILL after 3 s) and removes its
// directory.
func (x *Ejabberd) Stop() error {
	var err error
	if x.stdin != nil {
		x.stdin.Close()
	}
	if x.proc != nil {
		err = x.proc.stop(3 * time.Second)
	}
	os.RemoveAll(x.dir)
	return err
}
