package realserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	domainpkg "xmppneg/policy/domain"
)

// Jabberd2Settings are the s2s knobs of jabberd2 2.7 that matter here
// (s2s.xml).
type Jabberd2Settings struct {
	// PEMFile gives it <local><pemfile>: without it jabberd2 has no TLS
	// at all and opens its streams with pre-1.0 headers.
	PEMFile bool
	// RequireTLS is <security><require_tls>1</require_tls>.
	RequireTLS bool
	// Cert is the state of its certificate (with PEMFile).
	Cert certs.State
}

func (s Jabberd2Settings) String() string {
	return fmt.Sprintf("pemfile=%t,require_tls=%t,verify-mode=0,cert=%s", s.PEMFile, s.RequireTLS, s.Cert)
}

// Kind implements Setting.
func (s Jabberd2Settings) Kind() string { return jabberd2Kind.Name }

// ID implements Setting, such as "pemfile+require-tls".
func (s Jabberd2Settings) ID() string {
	if !s.PEMFile {
		return "no-pemfile"
	}
	id := "pemfile"
	if s.RequireTLS {
		id += "+require-tls"
	}
	if s.Cert != certs.Valid && s.Cert != "" {
		id += "+cert-" + string(s.Cert)
	}
	return id
}

// Policy expresses the settings in the harness's vocabulary: jabberd2's
// behaviour with these knobs (policy.Jabberd2Settings) and the state of
// its certificate.
func (s Jabberd2Settings) Policy() policy.Settings {
	p := policy.Jabberd2Settings(s.PEMFile, s.RequireTLS)
	if s.PEMFile {
		p.Cert = s.Cert
	}
	return p
}

// Start implements Setting.
func (s Jabberd2Settings) Start(domain string, pki *certs.PKI, dnsAddr string) (Server, error) {
	j, err := StartJabberd2(domain, s, pki, dnsAddr)
	if err != nil {
		return nil, err // not a nil *Jabberd2 in a non-nil Server
	}
	return j, nil
}

// Jabberd2 is a running private jabberd2: its router and its s2s
// component, each a process of its own, from configurations in a
// temporary directory; its resolver (libudns) asks the loopdns responder,
// told through the environment. In place of its session manager, which
// takes no part in s2s negotiation, a component of the harness's own
// (XEP-0114) serves the domain: it answers pings to it, as the session
// manager would, and sends the messages that make jabberd2 open its
// streams.
type Jabberd2 struct {
	domain, dir      string
	settings         Jabberd2Settings
	port, routerPort int
	componentSecret  string
	routerSecret     string
	// from is the operator's s2s.xml the instance runs (FileSetting), or
	// "" for the launcher's own.
	from        string
	router, s2s *process
	comp        *component
}

// StartJabberd2 starts jabberd2 for domain with settings s, resolving
// every other domain through the DNS responder at dnsAddr. It returns
// once its router says that s2s is its default route and that the domain
// is served, and s2s that it listens; a port taken before jabberd2 could
// bind it is tried again on another.
func StartJabberd2(domain string, s Jabberd2Settings, pki *certs.PKI, dnsAddr string) (*Jabberd2, error) {
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	if err := Require("jabberd2"); err != nil {
		return nil, err
	}
	if s.Cert == "" {
		s.Cert = certs.Valid
	}
	_, dnsPort, err := net.SplitHostPort(dnsAddr)
	if err != nil {
		return nil, fmt.Errorf("realserver: DNS address %q: %w", dnsAddr, err)
	}
	return startRetrying(func() (*Jabberd2, error) { return startJabberd2(domain, s, pki, dnsPort, "") })
}

func startJabberd2(domain string, s Jabberd2Settings, pki *certs.PKI, dnsPort, from string) (j *Jabberd2, err error) {
	dir, err := os.MkdirTemp("", "xmppneg-jabberd2-")
	if err != nil {
		return nil, err
	}
	j = &Jabberd2{domain: domain, dir: dir, settings: s, componentSecret: randomHex(16), routerSecret: randomHex(16), from: from}
	defer func() {
		if err != nil {
			err = fmt.Errorf("jabberd2 %s: %w\n%s", domain, err, j.Log()) // the log, before Stop removes it
			j.Stop()
		}
	}()
	if j.port, err = allocPort(); err != nil {
		return j, err
	}
	if j.routerPort, err = allocPort(); err != nil {
		return j, err
	}
	pem := ""
	if s.PEMFile && s.Cert != certs.Missing {
		// jabberd2 wants the certificate and its key in one PEM file.
		certDir := filepath.Join(dir, "certs")
		if err := pki.WritePEM(certDir, s.Cert, domain); err != nil {
			return j, err
		}
		var bundle []byte
		for _, f := range []string{domain + ".crt", domain + ".key"} {
			b, err := os.ReadFile(filepath.Join(certDir, f))
			if err != nil {
				return j, err
			}
			bundle = append(bundle, b...)
		}
		name, err := domainpkg.FileName(domain, ".pem")
		if err != nil {
			return j, err
		}
		pem = filepath.Join(certDir, name)
		if err := os.WriteFile(pem, bundle, 0o600); err != nil {
			return j, err
		}
	}
	cfgs := j.configs(pem, randomHex(16))
	if from != "" {
		if cfgs["s2s.xml"], err = j.fileS2S(from, pem); err != nil {
			return j, err
		}
	}
	for name, content := range cfgs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return j, err
		}
	}
	listening := func(port int) *regexp.Regexp {
		return regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("[127.0.0.1, port=%d] listening", port)))
	}
	routerSignals := []signal{
		{name: "router port", re: listening(j.routerPort)},
		{name: "s2s route", re: regexp.MustCompile(regexp.QuoteMeta("[s2s] set as default route"))},
		{name: "domain online", re: regexp.MustCompile(regexp.QuoteMeta("[" + domain + "] online"))},
	}
	if j.router, err = startProcess(dir, "router.out", nil, nil, routerSignals, "/usr/sbin/jabberd2-router", "-c", filepath.Join(dir, "router.xml")); err != nil {
		return j, err
	}
	if err := j.router.await("jabberd2's router", startBudget, "router port"); err != nil {
		return j, err
	}
	// libudns reads its name servers and port from the environment.
	env := []string{"NSCACHEIP=127.0.0.1", "RES_OPTIONS=port:" + dnsPort}
	if j.s2s, err = startProcess(dir, "s2s.out", env, nil, []signal{{name: "s2s port", re: listening(j.port)}}, "/usr/sbin/jabberd2-s2s", "-c", filepath.Join(dir, "s2s.xml")); err != nil {
		return j, err
	}
	if err := j.s2s.await("jabberd2's s2s", startBudget, "s2s port"); err != nil {
		return j, err
	}
	if j.comp, err = dialComponent(j.routerPort, domain, j.componentSecret); err != nil {
		return j, err
	}
	// Stanzas are routed once the router serves the domain and has s2s
	// as its default route.
	if err := j.router.await("jabberd2's router", startBudget, "s2s route", "domain online"); err != nil {
		return j, err
	}
	j.router.settle()
	j.s2s.settle()
	return j, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// configs renders router.xml, router-users.xml, sm.xml and s2s.xml.
func (j *Jabberd2) configs(pemfile, dialbackSecret string) map[string]string {
	retry := "<retry><init>10</init><lost>0</lost><sleep>1</sleep></retry>"
	tls := ""
	if pemfile != "" {
		tls = fmt.Sprintf("<pemfile>%s</pemfile><verify-mode>0</verify-mode>", pemfile)
	}
	security := ""
	if j.settings.RequireTLS {
		security = "<require_tls>1</require_tls>"
	}
	return map[string]string{
		"router.xml": fmt.Sprintf(`<router>
  <id>router</id>
  <pidfile>%[1]s/router.pid</pidfile>
  <log type='stdout'/>
  <local>
    <ip>127.0.0.1</ip><port>%[2]d</port>
    <users>%[1]s/router-users.xml</users>
    <secret>%[3]s</secret>
  </local>
  <check><interval>60</interval><keepalive>0</keepalive></check>
  <io><max_fds>256</max_fds><limits><bytes>0</bytes><connects>0</connects></limits><access><order>allow,deny</order></access></io>
  <aci><acl type='all'><user>jabberd</user></acl></aci>
</router>
`, j.dir, j.routerPort, j.componentSecret),
		"router-users.xml": fmt.Sprintf("<users><user><name>jabberd</name><secret>%s</secret></user></users>\n", j.routerSecret),
		"s2s.xml": fmt.Sprintf(`<s2s>
  <id>s2s</id>
  <pidfile>%[1]s/s2s.pid</pidfile>
  <router><ip>127.0.0.1</ip><port>%[2]d</port><user>jabberd</user><pass>%[3]s</pass>%[4]s</router>
  <log type='stdout'/>
  <local>
    <ip>127.0.0.1</ip><port>%[5]d</port>
    <secret>%[6]s</secret>
    %[7]s
  </local>
  <io><max_fds>256</max_fds><limits><stanzasize>65535</stanzasize></limits></io>
  <check><interval>1</interval><queue>10</queue><retry>1</retry><idle>86400</idle><keepalive>0</keepalive><dnscache>5</dnscache></check>
  <lookup><srv>xmpp-server</srv><min-ttl>5</min-ttl><max-ttl>5</max-ttl><bad-host-timeout>0</bad-host-timeout><no-cache/></lookup>
  <security>%[8]s</security>
</s2s>
`, j.dir, j.routerPort, j.routerSecret, retry, j.port, dialbackSecret, tls, security),
	}
}

// Domain implements Server.
func (j *Jabberd2) Domain() string { return j.domain }

// Addr returns jabberd2's s2s address.
func (j *Jabberd2) Addr() string { return fmt.Sprintf("127.0.0.1:%d", j.port) }

// Log returns what jabberd2's three components have logged so far.
func (j *Jabberd2) Log() string {
	var b strings.Builder
	for _, f := range []string{"router.out", "s2s.out"} {
		if c, err := os.ReadFile(filepath.Join(j.dir, f)); err == nil && len(c) > 0 {
			fmt.Fprintf(&b, "--- %s\n%s", f, c)
		}
	}
	return b.String()
}

// Stop stops the component and s2s, then the router (a component that
// loses the router first sleeps before it notices its own SIGTERM), and
// removes the directory.
func (j *Jabberd2) Stop() error {
	if j.comp != nil {
		j.comp.close()
	}
	var first error
	for _, p := range []*process{j.s2s, j.router} {
		if p == nil {
			continue
		}
		if err := p.stop(3 * time.Second); err != nil && first == nil {
			first = err
		}
	}
	os.RemoveAll(j.dir)
	return first
}

// Trigger makes jabberd2 open its s2s stream to domain: the component
// sends a message from jabberd2's domain to someone@domain, which the
// router hands to s2s.
func (j *Jabberd2) Trigger(_ context.Context, domain string) error {
	return j.comp.send(fmt.Sprintf("<message from='%s' to='someone@%s'><body>xmppneg</body></message>", j.domain, domain))
}

// component is a connection to jabberd2's router as an external
// component (XEP-0114) bound to the server's domain.
type component struct {
	domain string
	conn   net.Conn
	mu     sync.Mutex // writes
	done   chan struct{}
}

var streamID = regexp.MustCompile(`id=['"]([^'"]+)['"]`)

// dialComponent connects to the router at port as domain, authenticates
// with secret, and answers pings to domain until closed.
func dialComponent(port int, domain, secret string) (*component, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("component: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if _, err := fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain); err != nil {
		c.Close()
		return nil, err
	}
	var got strings.Builder
	for !streamID.MatchString(got.String()) {
		b, err := r.ReadByte()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("component: no stream id from the router: %w (%q)", err, got.String())
		}
		got.WriteByte(b)
	}
	h := sha1.Sum([]byte(streamID.FindStringSubmatch(got.String())[1] + secret))
	if _, err := fmt.Fprintf(c, "<handshake>%s</handshake>", hex.EncodeToString(h[:])); err != nil {
		c.Close()
		return nil, err
	}
	dec := xml.NewDecoder(r)
	if err := skipTo(dec, "handshake"); err != nil {
		c.Close()
		return nil, fmt.Errorf("component: the router refused the handshake: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	comp := &component{domain: domain, conn: c, done: make(chan struct{})}
	go comp.serve(dec)
	return comp, nil
}

// skipTo reads until the end of the element named local.
func skipTo(dec *xml.Decoder, local string) error {
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if end, ok := tok.(xml.EndElement); ok && end.Name.Local == local {
			return nil
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "error" {
			return fmt.Errorf("stream error")
		}
	}
}

// serve answers the pings the router hands to the domain, as jabberd2's
// session manager would, until the connection closes.
func (comp *component) serve(dec *xml.Decoder) {
	defer close(comp.done)
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "iq" {
			continue
		}
		var iq struct {
			Type string    `xml:"type,attr"`
			ID   string    `xml:"id,attr"`
			From string    `xml:"from,attr"`
			To   string    `xml:"to,attr"`
			Ping *struct{} `xml:"urn:xmpp:ping ping"`
		}
		if dec.DecodeElement(&iq, &se) != nil {
			return
		}
		if iq.Type == "get" && iq.Ping != nil {
			var b strings.Builder
			fmt.Fprintf(&b, "<iq type='result' id='%s' from='%s' to='%s'/>", xmlEscape(iq.ID), xmlEscape(iq.To), xmlEscape(iq.From))
			_ = comp.send(b.String())
		}
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (comp *component) send(stanza string) error {
	comp.mu.Lock()
	defer comp.mu.Unlock()
	_ = comp.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(comp.conn, stanza)
	return err
}

// close ends the component's stream and waits for its reader.
func (comp *component) close() {
	_ = comp.send("</stream:stream>")
	comp.conn.Close()
	<-comp.done
}

// jabberd2Version is what jabberd2-s2s says it is in its usage text,
// such as "(2.7.0)": it logs no version as it starts.
var jabberd2Version = regexp.MustCompile(`jabberd server-to-server connector \(([^)]+)\)`)

// Version asks the jabberd2-s2s program for its version ("jabberd2
// 2.7.0"), or returns "" when it does not say.
func (j *Jabberd2) Version() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "/usr/sbin/jabberd2-s2s", "-h").CombinedOutput()
	if m := jabberd2Version.FindSubmatch(out); m != nil {
		return "jabberd2 " + string(m[1])
	}
	return ""
}
