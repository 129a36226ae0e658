package sim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/domain"
	"xmppneg/policy/outcome"
)

// DefaultTimeout bounds one negotiation when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Defaults of the limits in Config, where it leaves them zero.
const (
	DefaultMaxConns          = 256 // inbound connections at once
	DefaultMaxConnsPerSource = 16  // inbound connections at once from one IPv4 address or IPv6 /64
	DefaultMaxOutbound       = 64  // connections opened at once on peers' behalf
)

// Config describes one endpoint.
type Config struct {
	Domain   string
	Settings policy.Settings
	// PKI issues the endpoint's certificate and holds the CA it trusts;
	// nil means certs.Default().
	PKI *certs.PKI
	// Net is where the endpoint registers itself and resolves others.
	Net *Network
	// Timeout bounds each negotiation it takes part in.
	Timeout time.Duration
	// Listen is the address to listen on; empty means 127.0.0.1:0.
	Listen string
	// DirectListen is where to listen for direct TLS (XEP-0368) when the
	// settings ask for it (direct_tls=true); empty means Listen's host
	// on a free port.
	DirectListen string
	// Unlisted keeps the endpoint out of Net's address book, as a second
	// node of a domain whose registered node is another one.
	Unlisted bool
	// RecordReads records what peers send as well as what this endpoint
	// sends, for peers that record nothing themselves (real servers).
	RecordReads bool
	// Faults makes the endpoint misbehave on purpose.
	Faults Faults
	// Limits bound what the endpoint reads from a peer.
	Limits Limits
	// MaxConns bounds the inbound connections served at once, and
	// MaxConnsPerSource those from one IP address, so that one source
	// cannot take every slot; more are refused at once with
	// <resource-constraint/>. Zero means the default.
	MaxConns          int
	MaxConnsPerSource int
	// MaxOutbound bounds the connections the endpoint opens at once
	// because a peer asked for something: verify connections for a
	// db:result and streams to answer pings on. Beyond it, the request
	// fails with <resource-constraint/> (a db:result) or goes
	// unanswered (a ping). Zero means DefaultMaxOutbound.
	MaxOutbound int
	// Logf, when set, is told of what happens outside any negotiation,
	// such as the listener failing to accept for a while.
	Logf func(format string, args ...any)
	// Rand is the source of stream ids and ping ids; nil means
	// crypto/rand. Tests give a seeded one to make transcripts
	// reproducible (TLS keeps crypto/rand: none of it shows in them).
	Rand io.Reader
	// Clock is what certificates are checked against and transcripts are
	// timed with; nil means time.Now. Deadlines always use the real clock.
	Clock func() time.Time
	// WithholdClientCert keeps Go's own choice of a client certificate:
	// none when the server's CertificateRequest lists CAs that did not
	// issue it. By default the endpoint presents its certificate anyway.
	WithholdClientCert bool
}

// Endpoint is one XMPP server, able to receive streams, initiate them and
// answer dialback verification requests as its domain's authoritative
// server.
type Endpoint struct {
	cfg     Config
	cert    *tls.Certificate
	roots   *x509.CertPool
	hints   *x509.CertPool // intermediates known, to name an incomplete chain
	secret  string
	timeout time.Duration
	// verifySessions resumes TLS on verify connections (see tlsEnd.clientConfig).
	verifySessions tls.ClientSessionCache

	ln      net.Listener
	direct  net.Listener // direct TLS (XEP-0368), when the settings ask for it
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	inbound func(*Result)
	answers map[string]chan struct{} // ids of pings awaiting an answer
	randMu  sync.Mutex
	// tlsBase is the server TLS configuration every connection clones.
	tlsOnce sync.Once
	tlsBase *tls.Config
	// inflight counts inbound connections being served; idle is closed
	// when the count falls to zero (see WaitIdle).
	inflight int
	idle     chan struct{}
	// sources counts inbound connections by IP address.
	sources map[string]int
	// outbound holds a token for each connection opened on a peer's
	// behalf.
	outbound chan struct{}
}

func (e *Endpoint) busy(delta int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inflight == 0 && delta > 0 {
		e.idle = make(chan struct{})
	}
	e.inflight += delta
	if e.inflight == 0 && e.idle != nil {
		close(e.idle)
	}
}

// WaitIdle waits until no inbound connection is being served (the
// connections a probed server opened back have ended), or ctx ends.
func (e *Endpoint) WaitIdle(ctx context.Context) error {
	e.mu.Lock()
	if e.inflight == 0 {
		e.mu.Unlock()
		return nil
	}
	idle := e.idle
	e.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewEndpoint checks cfg and prepares the endpoint's certificate. It does
// not listen until Start.
func NewEndpoint(cfg Config) (*Endpoint, error) {
	if cfg.Domain == "" {
		return nil, errors.New("sim: endpoint needs a domain")
	}
	if err := CheckDomain(cfg.Domain); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if cfg.Net == nil {
		return nil, errors.New("sim: endpoint needs a network")
	}
	if cfg.Settings.Cert == "" {
		cfg.Settings.Cert = certs.Valid
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	pki := cfg.PKI
	if pki == nil {
		var err error
		if pki, err = certs.Default(); err != nil {
			return nil, err
		}
	}
	e := &Endpoint{cfg: cfg, roots: pki.Roots(), hints: pki.Hints(), timeout: cfg.Timeout, secret: cfg.Settings.Secret,
		verifySessions: tls.NewLRUClientSessionCache(64), outbound: make(chan struct{}, orDefault(max(cfg.MaxOutbound, 0), DefaultMaxOutbound))}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	if e.secret == "" {
		// Nodes of one domain in this process share it, as a cluster
		// would; nobody outside can compute it (XEP-0185 §4).
		e.secret = processSecret()
	}
	if cfg.Settings.Cert != certs.Missing {
		c, err := pki.Certificate(cfg.Domain, cfg.Settings.Cert)
		if err != nil {
			return nil, err
		}
		e.cert = c
	}
	return e, nil
}

// processSecret is the dialback secret of every endpoint not given one:
// drawn at random once per process. A secret derivable from public data
// (the domain, say) would let anyone forge keys for our domain that a
// real server asking us to verify would accept.
var processSecret = sync.OnceValue(func() string { return rand.Text() + rand.Text() })

// CheckDomain reports whether d is usable as a server's domain: a JID
// domainpart (RFC 7622) that is a DNS name (see package domain).
func CheckDomain(d string) error { return domain.Check(d) }

// Domain returns the endpoint's domain.
func (e *Endpoint) Domain() string { return e.cfg.Domain }

// Settings returns the endpoint's settings.
func (e *Endpoint) Settings() policy.Settings { return e.cfg.Settings }

func (e *Endpoint) now() time.Time { return e.cfg.Clock() }

func (e *Endpoint) fault(f Fault) bool { return e.cfg.Faults.Has(f) }

// newID returns a fresh stream (or stanza) id from the endpoint's source
// of randomness.
func (e *Endpoint) newID() string {
	b := make([]byte, 8)
	e.randMu.Lock()
	_, _ = io.ReadFull(e.cfg.Rand, b)
	e.randMu.Unlock()
	return hex.EncodeToString(b)
}

// OnInbound sets a function called with the receiver's view of every
// inbound negotiation from a peer outside the endpoint's Network (a real
// server) once it is authenticated or has failed.
func (e *Endpoint) OnInbound(f func(*Result)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inbound = f
}

// Start listens and serves inbound connections until Close.
func (e *Endpoint) Start() error {
	addr := e.cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: %s: listen: %w", e.cfg.Domain, err)
	}
	e.ln = ln
	if e.cfg.Settings.DirectTLS && e.cert != nil && e.cfg.Settings.TLS != policy.NotSupported {
		daddr := e.cfg.DirectListen
		if daddr == "" {
			host, _, _ := net.SplitHostPort(ln.Addr().String())
			daddr = net.JoinHostPort(host, "0")
		}
		if e.direct, err = net.Listen("tcp", daddr); err != nil {
			ln.Close()
			return fmt.Errorf("sim: %s: listen for direct TLS: %w", e.cfg.Domain, err)
		}
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if !e.cfg.Unlisted {
		e.cfg.Net.Register(e.cfg.Domain, ln.Addr().String())
		if e.direct != nil {
			e.cfg.Net.RegisterDirectTLS(e.cfg.Domain, e.direct.Addr().String())
		}
	}
	e.wg.Add(1)
	go e.acceptLoop(e.ln, false)
	if e.direct != nil {
		e.wg.Add(1)
		go e.acceptLoop(e.direct, true)
	}
	return nil
}

// DirectAddr returns the address where the endpoint listens for direct
// TLS, or "" when it does not.
func (e *Endpoint) DirectAddr() string {
	if e.direct == nil {
		return ""
	}
	return e.direct.Addr().String()
}

// Addr returns the address the endpoint listens on.
func (e *Endpoint) Addr() string {
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// Close stops listening, aborts the negotiations under way and waits for
// every goroutine of the endpoint to end.
func (e *Endpoint) Close() error {
	if e.ln == nil {
		return nil
	}
	e.cancel()
	err := e.ln.Close()
	if e.direct != nil {
		e.direct.Close()
	}
	e.wg.Wait()
	return err
}

func (e *Endpoint) acceptLoop(ln net.Listener, directTLS bool) {
	defer e.wg.Done()
	limit := orDefault(max(e.cfg.MaxConns, 0), DefaultMaxConns)
	perSource := orDefault(max(e.cfg.MaxConnsPerSource, 0), DefaultMaxConnsPerSource)
	slots := make(chan struct{}, limit)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.ctx.Err() != nil {
				return
			}
			// Out of file descriptors (EMFILE, ENFILE), a connection
			// aborted before it was accepted: the listener itself is
			// fine, so wait a little and go on, saying so once a burst.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				e.logf("accepting on %s: %v; retrying", ln.Addr(), err)
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			select {
			case <-time.After(backoff):
			case <-e.ctx.Done():
				return
			}
			continue
		}
		if backoff != 0 {
			e.logf("accepting on %s again", ln.Addr())
			backoff = 0
		}
		c = quickAck(c)
		source := remoteIP(c)
		refusal := ""
		select {
		case slots <- struct{}{}:
			if !e.enter(source, perSource) {
				<-slots
				refusal = fmt.Sprintf("more than %d connections at once from %s", perSource, source)
			}
		default:
			refusal = fmt.Sprintf("more than %d connections at once", limit)
		}
		if refusal != "" {
			// Refused at once, without reading: the peer may be flooding.
			// A fresh socket takes these few bytes without blocking.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write([]byte(headerXML(e.cfg.Domain, "", e.newID()) +
				streamErrorXML(string(outcome.ResourceConstraint), refusal) + closeTag))
			c.Close()
			continue
		}
		e.wg.Add(1)
		e.busy(1)
		go func() {
			defer e.wg.Done()
			defer e.busy(-1)
			defer func() { <-slots }()
			defer e.leave(source)
			e.handleInbound(c, directTLS)
		}()
	}
}

func (e *Endpoint) logf(format string, args ...any) {
	if e.cfg.Logf != nil {
		e.cfg.Logf(format, args...)
	}
}

// remoteIP is the source a connection is counted against: its IPv4
// address, or its IPv6 address's /64 (see sourceOf).
func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return sourceOf(a.IP)
	}
	return c.RemoteAddr().String()
}

// SourcePrefixV6 is the IPv6 prefix length counted as one source: a
// host is routinely given a whole /64 (SLAAC, RFC 4291 §2.5.1), so
// counting its addresses one by one would let it take every slot from
// 16 of its millions.
const SourcePrefixV6 = 64

// sourceOf is what connections from ip count against: the address
// itself for IPv4 (IPv4-mapped IPv6 included), its /64 for IPv6,
// written as a prefix ("2001:db8:1:2::/64").
func sourceOf(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	if ip.To16() == nil {
		return ip.String()
	}
	n := net.IPNet{IP: ip.Mask(net.CIDRMask(SourcePrefixV6, 128)), Mask: net.CIDRMask(SourcePrefixV6, 128)}
	return n.String()
}

// enter counts a connection from source, unless source has most already.
func (e *Endpoint) enter(source string, most int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sources == nil {
		e.sources = map[string]int{}
	}
	if e.sources[source] >= most {
		return false
	}
	e.sources[source]++
	return true
}

func (e *Endpoint) leave(source string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sources[source]--; e.sources[source] <= 0 {
		delete(e.sources, source)
	}
}

// takeOutbound reserves one of the connections the endpoint may open on
// peers' behalf, or reports that all are in use.
func (e *Endpoint) takeOutbound() (release func(), ok bool) {
	select {
	case e.outbound <- struct{}{}:
		return func() { <-e.outbound }, true
	default:
		return nil, false
	}
}

// arm bounds every read and write on raw by deadline and aborts them when
// ctx ends. The deadline is set on the connection itself so that a
// silent peer cannot hold a negotiation past it.
func arm(ctx context.Context, raw net.Conn, deadline time.Time) (stop func() bool) {
	_ = raw.SetDeadline(deadline)
	return context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
}

// Initiate opens a stream to domain and negotiates it, then proves it
// with a ping. The result is complete: it includes what the receiving
// and the authoritative end recorded, when they are endpoints of the
// same Network.
func (e *Endpoint) Initiate(ctx context.Context, domain string) *Result {
	return e.open(ctx, domain, (*initiatorState).pingAndClose)
}

// deliver opens a stream of this endpoint's own to domain, sends stanza
// on it and closes it: how a server answers a peer whose stream is
// one-way.
func (e *Endpoint) deliver(ctx context.Context, domain, stanza string) *Result {
	return e.open(ctx, domain, func(hs *initiatorState) error { return hs.sendAndClose(stanza) })
}

// open opens a stream to domain, negotiates it, and once it is
// authenticated hands it to then.
func (e *Endpoint) open(ctx context.Context, domain string, then func(*initiatorState) error) *Result {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	tr := newTrace(e.cfg.Clock)
	c, hangUp, err := e.dial(ctx, domain, tr, mainConn, deadline)
	if err == nil {
		hs := &initiatorState{connecting: newConnecting(c)}
		if err = hs.handshake(); err == nil {
			tr.authenticated(hs.method)
			c.step = outcome.StepStream
			if err = then(hs); err == nil {
				tr.succeed(outcome.Initiator, hs.method)
			}
		}
		// Hang up before the result is read: hanging up waits for the
		// other ends (when they are ours) to finish recording.
		hangUp()
	}
	return tr.result(outcome.Initiator, e.cfg.Domain, domain)
}

// dial connects to domain for a connection of the given name, recording
// a failure to resolve or connect. It returns the connection, armed with
// the deadline and tracked on the Network so that the other end (when it
// is one of ours) records into tr, and the function that hangs up.
func (e *Endpoint) dial(ctx context.Context, domain string, tr *trace, name string, deadline time.Time) (*xconn, func(), error) {
	me, them := outcome.Initiator, outcome.Receiver
	if name == verifyConn {
		me, them = outcome.Receiver, outcome.Authoritative
	}
	fail := func(cond outcome.Condition, format string, a ...any) error {
		f := outcome.Failure{Step: outcome.StepTCP, Condition: cond, By: me, Message: fmt.Sprintf(format, a...), Conn: name}
		if name == verifyConn {
			f.Step = outcome.StepDialbackVerify
		}
		tr.fail(f)
		return &recorded{f}
	}
	what := domain
	if name == verifyConn {
		what = "the authoritative server of " + domain
	}
	targets, res, err := e.cfg.Net.targets(ctx, domain)
	if name == mainConn && res != nil {
		tr.setResolution(res)
	}
	if err != nil {
		return nil, nil, fail(outcome.RemoteServerNotFound, "cannot resolve %s: %v", what, err)
	}
	// Each target in turn, as RFC 6120 §3.2.1 says, until one connects.
	var tried []string
	cond := outcome.RemoteConnectionFailed
	for _, t := range targets {
		a := Attempt{Target: t.target, Addr: t.addr}
		switch {
		case t.target.DirectTLS && e.cfg.Settings.TLS == policy.NotSupported:
			a.Result = "skipped: direct TLS, and this end has TLS NotSupported"
		case t.target.DirectTLS && !e.cfg.Settings.DirectTLS:
			a.Result = "skipped: direct TLS, which this end does not use (direct_tls=false)"
		}
		if a.Result != "" {
			e.attempt(tr, name, a)
			continue
		}
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			if isTimeout(err) || ctx.Err() != nil {
				cond = outcome.RemoteServerTimeout
			}
			a.Result = err.Error()
			e.attempt(tr, name, a)
			tried = append(tried, fmt.Sprintf("%s: %v", t.addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		a.Result = "connected"
		raw = quickAck(raw)
		e.attempt(tr, name, a)
		l := e.cfg.Net.track(raw.LocalAddr().String(), tr, name)
		stop := arm(ctx, raw, deadline)
		hangUp := func() {
			stop()
			hangUp(raw, deadline)
			e.cfg.Net.untrack(raw.LocalAddr().String(), l, deadline.Add(100*time.Millisecond))
		}
		c := newXConn(e, raw, tr, name, me, them, domain, deadline)
		c.directTLS = t.target.DirectTLS
		return c, hangUp, nil
	}
	if len(tried) == 0 {
		return nil, nil, fail(outcome.RemoteConnectionFailed, "cannot connect to %s: its only targets are direct TLS, which this end does not use", what)
	}
	return nil, nil, fail(cond, "cannot connect to %s at %s", what, triedText(tried))
}

// MaxTriedShown bounds the addresses a connection failure names: every
// attempt is in the transcript, and a log line stays short.
const MaxTriedShown = 4

// triedText is the addresses tried and what each said, the first
// MaxTriedShown of them.
func triedText(tried []string) string {
	if len(tried) <= MaxTriedShown {
		return strings.Join(tried, "; ")
	}
	return fmt.Sprintf("%s; and %d more addresses", strings.Join(tried[:MaxTriedShown], "; "), len(tried)-MaxTriedShown)
}

// attempt records one connection attempt of the main connection.
func (e *Endpoint) attempt(tr *trace, name string, a Attempt) {
	if name == mainConn {
		tr.attempt(a)
	}
}

// hangUp closes a connection this endpoint opened. It first gives the
// accepting end a moment to close it, so that the TIME_WAIT state stays
// with the listening port rather than with our ephemeral one: thousands
// of negotiations in a row would otherwise slow every new connect() down.
// A peer that has stopped answering is not waited for.
func hangUp(raw net.Conn, deadline time.Time) {
	if wait := time.Until(deadline); wait > 0 {
		_ = raw.SetReadDeadline(time.Now().Add(min(wait, 500*time.Millisecond)))
		buf := make([]byte, 512)
		for {
			if _, err := raw.Read(buf); err != nil {
				break
			}
		}
	}
	raw.Close()
}

// handleInbound serves one inbound connection: a stream from an
// initiating server, or a verify connection from a receiving server.
func (e *Endpoint) handleInbound(raw net.Conn, directTLS bool) {
	defer raw.Close()
	deadline := time.Now().Add(e.timeout)
	stop := arm(e.ctx, raw, deadline)
	defer stop()
	tr := newTrace(e.cfg.Clock)
	c := newXConn(e, raw, tr, mainConn, outcome.Receiver, outcome.Initiator, "", deadline)
	c.directTLS = directTLS
	rs := &receiverState{c: c, tls: tlsEnd{c: c}}
	// The claim on a shared trace ends last, once what runs in the
	// background (the close of a verify connection) has recorded too.
	defer func() {
		if rs.release != nil {
			rs.release()
		}
	}()
	defer rs.bg.Wait()
	authenticated, err := rs.handshake()
	rs.report()
	if err == nil && authenticated {
		// Serving an authenticated stream is no longer the negotiation: a
		// fresh deadline, so that an initiator waiting for an answer (one
		// that comes over another stream, say) gives up first, as it
		// would with a real server, which keeps the stream far longer.
		_ = raw.SetDeadline(time.Now().Add(e.timeout))
		rs.serveAuthenticated()
	}
}

// report hands the endpoint's view of a connection that a peer outside
// this Network (a real server) opened to it to OnInbound: the peer's own
// stream, or its verify connection.
func (rs *receiverState) report() {
	c := rs.c
	e := c.ep
	e.mu.Lock()
	f := e.inbound
	e.mu.Unlock()
	if f != nil && rs.release == nil {
		r := c.tr.result(outcome.Receiver, c.peer, e.cfg.Domain)
		r.Role = c.me.String()
		if rs.tls.scanVersion != 0 {
			r.Scan = &ScanSeen{Version: tls.VersionName(rs.tls.scanVersion), From: c.raw.RemoteAddr().String(), Accepted: rs.tls.handshaken}
			if c.peer != "" {
				r.Scan.From += " (" + c.peer + ")"
			}
		}
		if c.me == outcome.Authoritative && !c.tr.failed() {
			// A verify connection that asked, had its answers and
			// ended did its job: it authenticates nothing, by design
			// (XEP-0220 §2.3), and failed at nothing.
			r.Outcome, r.VerifyAnswered = outcome.Outcome{}, true
		}
		f(r)
	}
}

// expectAnswer returns a channel closed when an answer to the stanza with
// that id arrives on any inbound stream.
func (e *Endpoint) expectAnswer(id string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answers == nil {
		e.answers = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	e.answers[id] = ch
	return ch
}

func (e *Endpoint) forgetAnswer(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.answers, id)
}

func (e *Endpoint) answer(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.answers[id]; ok {
		close(ch)
		delete(e.answers, id)
	}
}
