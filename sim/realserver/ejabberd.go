package realserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/domain"
)

// EjabberdSettings are the s2s knobs of ejabberd that matter here.
type EjabberdSettings struct {
	// StartTLS is s2s_use_starttls: "false", "optional" or "required".
	StartTLS string
	// Dialback loads mod_s2s_dialback.
	Dialback bool
	// Cert is the state of ejabberd's own certificate.
	Cert certs.State
	// Backports runs ejabberd 24.12 (kind ejabberd-24, from
	// bookworm-backports as install-backports.sh unpacked it) instead of
	// the system's 23.01.
	Backports bool
	// Bidi loads mod_s2s_bidi (XEP-0288, added in ejabberd 24.10);
	// Backports only.
	Bidi bool
}

func (s EjabberdSettings) String() string {
	out := fmt.Sprintf("s2s_use_starttls=%s,mod_s2s_dialback=%t,cert=%s", s.StartTLS, s.Dialback, s.Cert)
	if s.Bidi {
		out += ",mod_s2s_bidi=true"
	}
	return out
}

// Policy expresses the settings in the harness's vocabulary: ejabberd's
// behaviour with these knobs (policy.EjabberdSettings, where each
// observation is written down) and the state of its certificate.
func (s EjabberdSettings) Policy() policy.Settings {
	tls := map[string]policy.Level{"false": policy.NotSupported, "optional": policy.Optional, "required": policy.Required}[s.StartTLS]
	var p policy.Settings
	if s.Backports {
		p = policy.Ejabberd24Settings(tls, s.Dialback, s.Bidi)
	} else {
		p = policy.EjabberdSettings(tls, s.Dialback)
	}
	p.Cert = s.Cert
	return p
}

// Ejabberd is a running private ejabberd: a plain erl node with no
// distribution and no epmd, whose Erlang shell on standard input makes it
// send stanzas. One process may serve several settings, each as a
// virtual host of its own domain (s2s_use_starttls and the modules are
// per-host options in ejabberd): starting ejabberd costs seconds of CPU,
// a virtual host nothing.
type Ejabberd struct {
	hosts  []EjabberdHost
	dir    string
	port   int
	proc   *process
	notify *notifySocket
	mu     sync.Mutex
	stdin  io.WriteCloser

	version string // what it said it was (Version)

	refs     int // hosts whose negotiations still need the process (Host)
	stopOnce sync.Once
	stopErr  error
}

// EjabberdHost is one virtual host of an ejabberd process.
type EjabberdHost struct {
	Domain   string
	Settings EjabberdSettings
}

// StartEjabberd starts ejabberd for domain with settings s, trusting the
// CA of pki, resolving every other domain through the loopdns responder
// at dnsAddr and talking s2s only to *.test domains.
func StartEjabberd(domain string, s EjabberdSettings, pki *certs.PKI, dnsAddr string) (*Ejabberd, error) {
	return StartEjabberdHosts([]EjabberdHost{{domain, s}}, pki, dnsAddr)
}

// StartEjabberdHosts starts one ejabberd serving every host. It returns
// once ejabberd has told systemd's notification socket that it is ready
// and its own shell says that its routing tables and every host's
// certificate are loaded, or an error with its log. A port taken before
// ejabberd could bind it is tried again on another.
func StartEjabberdHosts(hosts []EjabberdHost, pki *certs.PKI, dnsAddr string) (*Ejabberd, error) {
	for _, h := range hosts {
		if err := checkDomain(h.Domain); err != nil {
			return nil, err
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("realserver: ejabberd needs a host")
	}
	if err := Require(hosts[0].Settings.Kind()); err != nil {
		return nil, err
	}
	hosts = slices.Clone(hosts)
	seen := map[string]bool{}
	for i := range hosts {
		h := &hosts[i]
		if seen[h.Domain] {
			return nil, fmt.Errorf("realserver: ejabberd host %s given twice", h.Domain)
		}
		seen[h.Domain] = true
		if h.Settings.Backports != hosts[0].Settings.Backports {
			return nil, fmt.Errorf("realserver: ejabberd hosts %s and %s are of different versions", hosts[0].Domain, h.Domain)
		}
		if h.Settings.Bidi && !h.Settings.Backports {
			return nil, fmt.Errorf("realserver: mod_s2s_bidi: ejabberd 23.01 has no mod_s2s_bidi (ejabberd-24 has)")
		}
		if h.Settings.Cert == "" {
			h.Settings.Cert = certs.Valid
		}
		switch h.Settings.StartTLS {
		case "false", "optional", "required":
		default:
			return nil, fmt.Errorf("realserver: s2s_use_starttls %q: accepted values are false, optional, required", h.Settings.StartTLS)
		}
		if h.Settings.Cert == certs.WrongName && len(hosts) > 1 {
			// Without a certificate for its name, a host presents the
			// process's default one: another host's.
			return nil, fmt.Errorf("realserver: ejabberd host %s has a certificate for another name and cannot share a process", h.Domain)
		}
	}
	host, port, ok := strings.Cut(dnsAddr, ":")
	if !ok || host != "127.0.0.1" {
		return nil, fmt.Errorf("realserver: DNS address %q is not 127.0.0.1:PORT", dnsAddr)
	}
	return startRetrying(func() (*Ejabberd, error) {
		x, err := startEjabberd(hosts, pki, port, nil)
		var slow *slowStart
		if errors.As(err, &slow) {
			// Once in a while (a few starts in thousands, on 2 busy
			// cores) the Erlang shell never takes its input: a second
			// start has always come up. A server that fails otherwise is
			// not retried.
			x, err = startEjabberd(hosts, pki, port, nil)
		}
		return x, err
	})
}

// slowStart is a start that came to no answer within its budget.
type slowStart struct{ err error }

func (e *slowStart) Error() string { return e.err.Error() }
func (e *slowStart) Unwrap() error { return e.err }

// ejabberdConfigFunc writes the configuration of an instance in dir
// listening on port; nil is the launcher's own, from the hosts' settings.
type ejabberdConfigFunc func(dir string, port int) (string, error)

func startEjabberd(hosts []EjabberdHost, pki *certs.PKI, dnsPort string, config ejabberdConfigFunc) (x *Ejabberd, err error) {
	dir, err := os.MkdirTemp("", "xmppneg-ejabberd-")
	if err != nil {
		return nil, err
	}
	x = &Ejabberd{hosts: hosts, dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("ejabberd %s: %w\n%s", x.hosts[0].Domain, err, x.Log()) // the log, before Stop removes it
			x.stop()
		}
	}()
	certDir := filepath.Join(dir, "certs")
	if err := pki.WritePEM(certDir, certs.Valid); err != nil { // the CA it trusts
		return x, err
	}
	for _, h := range hosts {
		if h.Settings.Cert == certs.Missing {
			continue // no certificate: a real setting
		}
		if err := pki.WritePEM(certDir, h.Settings.Cert, h.Domain); err != nil {
			return x, err
		}
		// ejabberd wants certificate, key and chain in one file.
		var bundle []byte
		for _, f := range []string{h.Domain + ".crt", h.Domain + ".key", "ca.pem"} {
			b, err := os.ReadFile(filepath.Join(certDir, f))
			if err != nil {
				return x, err
			}
			bundle = append(bundle, b...)
		}
		name, err := domain.FileName(h.Domain, ".pem")
		if err != nil {
			return x, err
		}
		if err := os.WriteFile(filepath.Join(certDir, name), bundle, 0o600); err != nil {
			return x, err
		}
	}
	if x.port, err = allocPort(); err != nil {
		return x, err
	}
	inetrc := fmt.Sprintf("{resolv_conf, \"\"}.\n{nameserver, {127,0,0,1}, %s}.\n{timeout, 1000}.\n{retry, 2}.\n{lookup, [file, dns]}.\n{host, {127,0,0,1}, [\"localhost\"]}.\n", dnsPort)
	if err := os.WriteFile(filepath.Join(dir, "inetrc"), []byte(inetrc), 0o600); err != nil {
		return x, err
	}
	if config == nil {
		config = func(dir string, port int) (string, error) { return ejabberdConfig(dir, port, hosts), nil }
	}
	text, err := config(dir, x.port)
	if err != nil {
		return x, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ejabberd.yml"), []byte(text), 0o600); err != nil {
		return x, err
	}
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return x, err
	}
	if x.notify, err = listenNotify(filepath.Join(dir, "notify.sock")); err != nil {
		return x, err
	}
	libs, err := ejabberdLibs(hosts[0].Settings.Backports)
	if err != nil {
		return x, err
	}
	env := []string{
		"ERL_INETRC=" + filepath.Join(dir, "inetrc"),
		"EJABBERD_CONFIG_PATH=" + filepath.Join(dir, "ejabberd.yml"),
		"EJABBERD_LOG_PATH=" + filepath.Join(dir, "ejabberd.log"),
		"ERL_LIBS=" + libs,
		"ERL_CRASH_DUMP_BYTES=0",
		// ejabberd speaks systemd's notification protocol: READY=1
		// once it has started.
		"NOTIFY_SOCKET=" + x.notify.path,
	}
	signals := []signal{
		{name: "ready", re: regexp.MustCompile(`^sd_notify: READY=1`)},
		{name: "shell ready", re: readyLine},
		{name: "shell not ready", re: regexp.MustCompile(`^xmppneg-not-ready$`), fatal: true},
		{name: "start failed", re: regexp.MustCompile(`initialization was aborted|failed_to_start_child|Kernel pid terminated`), fatal: true},
	}
	r, w, err := os.Pipe()
	if err != nil {
		return x, err
	}
	// Schedulers that do not spin while idle: a busy-waiting VM took a
	// core's worth of CPU from the negotiations of a sweep.
	x.proc, err = startProcess(spool, "stdout.log", env, r, signals, "erl", "+K", "true",
		"+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none",
		"-mnesia", "dir", `"`+spool+`"`, "-s", "ejabberd")
	r.Close()
	if err != nil {
		w.Close()
		return x, err
	}
	x.stdin = w
	go x.notify.feed(x.proc.out)
	if err := x.proc.await(hosts[0].Settings.Kind(), startBudget, "ready"); err != nil {
		return x, err
	}
	if err := x.waitReady(startBudget); err != nil {
		return x, err
	}
	x.proc.settle()
	return x, nil
}

func ejabberdConfig(dir string, port int, hosts []EjabberdHost) string {
	var names, certfiles []string
	var perHost strings.Builder
	for _, h := range hosts {
		names = append(names, strconv.Quote(h.Domain))
		if h.Settings.Cert != certs.Missing {
			certfiles = append(certfiles, strconv.Quote(filepath.Join(dir, "certs", h.Domain+".pem")))
		}
		dialback := ""
		if h.Settings.Dialback {
			dialback = "      mod_s2s_dialback: {}\n"
		}
		if h.Settings.Bidi {
			dialback += "      mod_s2s_bidi: {}\n"
		}
		fmt.Fprintf(&perHost, `  %q:
    s2s_use_starttls: %s
    modules:
      mod_admin_extra: {}
      mod_disco: {}
      mod_ping: {}
      mod_version: {}
%s`, h.Domain, h.Settings.StartTLS, dialback)
	}
	return fmt.Sprintf(`# Generated by xmppneg for a private test instance.
hosts: [%[1]s]
loglevel: info
log_rotate_count: 0
hide_sensitive_log_data: false
certfiles: [%[2]s]
ca_file: %[3]q
acme: {auto: false}
s2s_access: s2s
s2s_dns_timeout: 2
s2s_dns_retries: 1
# Its own deadlines far from the harness's (1 s in the sweeps, 5 s by
# default), so that the two never race.
outgoing_s2s_timeout: 30
s2s_max_retry_delay: 1
negotiation_timeout: 30
listen:
  - {port: %[4]d, ip: "127.0.0.1", module: ejabberd_s2s_in, max_stanza_size: 524288}
acl:
  local: {user_regexp: ""}
  harness_servers: {server_regexp: "\\.test$"}
access_rules:
  local: {allow: local}
  # s2s only with the harness's .test domains: nothing else is ever dialled.
  s2s: {allow: harness_servers}
# Each host's own s2s settings.
host_config:
%[5]s`, strings.Join(names, ", "), strings.Join(certfiles, ", "), filepath.Join(dir, "certs", "ca.pem"), port, perHost.String())
}

// readyMark is what ejabberd's shell prints once it is ready
// (waitReady), followed by the version ejabberd says it is.
const readyMark = "xmppneg-ready"

var readyLine = regexp.MustCompile(`^` + readyMark + ` (\S+)$`)

// Version is the version ejabberd said it was once ready, such as
// "ejabberd 24.12".
func (x *Ejabberd) Version() string { return x.version }

// waitReady waits until ejabberd can open s2s streams as it will for
// the negotiations. Even after READY=1 it could not at first, on a busy
// machine: a message sent too early is dropped with
// {aborted,{no_exists,[route,...]}} or {aborted,{no_exists,[s2s,...]}}
// (its routing tables are not there yet), and a stream opened too early
// presents no client certificate (ejabberd_pkix has not loaded it yet),
// so that EXTERNAL is not offered to it: all three seen here right after
// its port opened. Its own shell is asked to say when the tables and
// every host's certificate are there, and says so on its output.
func (x *Ejabberd) waitReady(within time.Duration) error {
	var checks []string
	for _, h := range x.hosts {
		switch h.Settings.Cert {
		case certs.Missing:
			// None to wait for.
		case certs.WrongName:
			// No certificate for its name: it uses its default one.
			checks = append(checks, "catch ejabberd_pkix:get_certfile()")
		default:
			checks = append(checks, fmt.Sprintf("catch ejabberd_pkix:get_certfile_no_default(<<\"%s\">>)", h.Domain))
		}
	}
	// The code of the s2s streams and of the XMPP codec is loaded before
	// ready is said: Erlang loads a module at its first call, and a
	// first stream of ejabberd 23.01 on Debian's configuration that
	// loaded a few hundred of them took more than the sweeps' 1 s
	// deadline on a busy machine.
	preload := "[code:ensure_loaded(M) || A <- [xmpp, fast_tls, fast_xml, stringprep], {ok, Ms} <- [application:get_key(A, modules)], M <- Ms], " +
		"[code:ensure_loaded(M) || M <- [ejabberd_s2s, ejabberd_s2s_in, ejabberd_s2s_out, xmpp_stream_in, xmpp_stream_out, xmpp_stream_pkix, mod_s2s_dialback, ejabberd_router, ejabberd_local, mod_ping, mod_admin_extra]], "
	if x.hosts[0].Settings.Backports {
		// ejabberd 24.12 loads its code as it first needs it, and a
		// negotiation taking a path for the first time (dialback verify,
		// a refused certificate, bidi) waited for that over the 1 s
		// deadline of the sweeps on a busy machine: 16 of 1,213 timed out
		// here until every module of its applications was loaded before
		// it was called ready.
		preload = "[code:ensure_modules_loaded(Ms) || {A, _, _} <- application:loaded_applications(), {ok, Ms} <- [application:get_key(A, modules)]], "
	}
	x.mu.Lock()
	_, err := fmt.Fprintf(x.stdin, "%s(fun W(0) -> io:format(\"~nxmppneg-not-ready~n\"); W(N) -> "+
		"case {[route, s2s] -- mnesia:system_info(tables), [C || C <- [%s], element(1, C) =/= ok]} of "+
		"{[], []} -> io:format(\"~n%s ~s~n\", [ejabberd_option:version()]); _ -> timer:sleep(20), W(N-1) end end)(%d).\n",
		preload, strings.Join(checks, ", "), readyMark, within/(20*time.Millisecond))
	x.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing to its shell: %w", err)
	}
	err = x.proc.await("ejabberd's shell", within+time.Second, "shell ready")
	var se *startError
	if errors.As(err, &se) && strings.Contains(se.what, "did not say") {
		return &slowStart{err}
	}
	if err != nil && strings.Contains(err.Error(), "not-ready") {
		return fmt.Errorf("its routing tables or its certificates were not ready within %s", within)
	}
	if m := readyLine.FindStringSubmatch(x.proc.seenLine("shell ready")); m != nil {
		x.version = "ejabberd " + m[1]
	}
	return err
}

// Addr returns ejabberd's s2s address.
func (x *Ejabberd) Addr() string { return fmt.Sprintf("127.0.0.1:%d", x.port) }

// Domain implements Server: the first host's domain.
func (x *Ejabberd) Domain() string { return x.hosts[0].Domain }

// Log returns ejabberd's log so far.
func (x *Ejabberd) Log() string {
	b, _ := os.ReadFile(filepath.Join(x.dir, "ejabberd.log"))
	o, _ := os.ReadFile(filepath.Join(x.dir, "spool", "stdout.log"))
	return string(b) + string(o)
}

// Send makes ejabberd send a chat message from its (first) domain to
// jid, which opens its s2s stream to jid's domain.
func (x *Ejabberd) Send(jid string) error { return x.send(x.hosts[0].Domain, jid) }

func (x *Ejabberd) send(from, jid string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, err := fmt.Fprintf(x.stdin, "mod_admin_extra:send_message(<<\"chat\">>, <<\"admin@%s\">>, <<\"%s\">>, <<\"\">>, <<\"xmppneg\">>).\n", from, jid)
	return err
}

// Trigger makes ejabberd open its stream to domain by sending a message.
func (x *Ejabberd) Trigger(_ context.Context, domain string) error {
	return x.Send("someone@" + domain)
}

// Stop stops ejabberd (SIGTERM, then SIGKILL after 3 s) and removes its
// directory.
func (x *Ejabberd) Stop() error {
	x.stop()
	return x.stopErr
}

func (x *Ejabberd) stop() {
	x.stopOnce.Do(func() {
		if x.stdin != nil {
			x.stdin.Close()
		}
		if x.proc != nil {
			x.stopErr = x.proc.stop(3 * time.Second)
		}
		if x.notify != nil {
			x.notify.close()
		}
		os.RemoveAll(x.dir)
	})
}

// Hosts returns one Server per host, in the order they were given: each
// negotiates as its own domain, and the process stops once every one of
// them has been stopped.
func (x *Ejabberd) Hosts() []Server {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]Server, len(x.hosts))
	for i, h := range x.hosts {
		out[i] = &ejabberdHost{x: x, domain: h.Domain}
	}
	x.refs += len(out)
	return out
}

// ejabberdHost is one host of a shared ejabberd process.
type ejabberdHost struct {
	x       *Ejabberd
	domain  string
	stopped sync.Once
}

func (h *ejabberdHost) Domain() string { return h.domain }
func (h *ejabberdHost) Addr() string   { return h.x.Addr() }
func (h *ejabberdHost) Log() string    { return h.x.Log() }

// Version is the version of the process serving the host.
func (h *ejabberdHost) Version() string { return h.x.Version() }

func (h *ejabberdHost) Trigger(_ context.Context, domain string) error {
	return h.x.send(h.domain, "someone@"+domain)
}

// Stop releases the host; the last one stops the process.
func (h *ejabberdHost) Stop() error {
	last := false
	h.stopped.Do(func() {
		h.x.mu.Lock()
		h.x.refs--
		last = h.x.refs == 0
		h.x.mu.Unlock()
	})
	if last {
		return h.x.Stop()
	}
	return nil
}
