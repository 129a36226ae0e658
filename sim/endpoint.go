package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"xmppneg/certs"
	"xmppneg/policy"
)

// DefaultTimeout bounds one negotiation when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultMaxConns bounds an endpoint's inbound connections when
// Config.MaxConns is zero.
const DefaultMaxConns = 256

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
	// MaxConns bounds the inbound connections served at once; more are
	// refused with <resource-constraint/>. Zero means DefaultMaxConns.
	MaxConns int
}

// Endpoint is one XMPP server, able to receive streams, initiate them and
// answer dialback verification requests as its domain's authoritative
// server.
type Endpoint struct {
	cfg     Config
	cert    *tls.Certificate
	roots   *x509.CertPool
	secret  string
	timeout time.Duration
	// verifySessions resumes TLS on verify connections (see clientTLS).
	verifySessions tls.ClientSessionCache

	ln      net.Listener
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	inbound func(*Result)
	answers map[string]chan struct{} // ids of pings awaiting an answer
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

// NewEndpoint checks cfg and prepares the endpoint's certificate. It does
// not listen until Start.
func NewEndpoint(cfg Config) (*Endpoint, error) {
	if cfg.Domain == "" {
		return nil, errors.New("sim: endpoint needs a domain")
	}
	if _, err := jid.New("", cfg.Domain, ""); err != nil {
		return nil, fmt.Errorf("sim: invalid domain %q: %w", cfg.Domain, err)
	}
	if cfg.Net == nil {
		return nil, errors.New("sim: endpoint needs a network")
	}
	if cfg.Settings.Cert == "" {
		cfg.Settings.Cert = certs.Valid
	}
	pki := cfg.PKI
	if pki == nil {
		var err error
		if pki, err = certs.Default(); err != nil {
			return nil, err
		}
	}
	e := &Endpoint{cfg: cfg, roots: pki.Roots(), timeout: cfg.Timeout, secret: cfg.Settings.Secret,
		verifySessions: tls.NewLRUClientSessionCache(64)}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	if e.secret == "" {
		// Nodes of one domain share a secret unless told otherwise.
		e.secret = "xmppneg dialback secret of " + cfg.Domain
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

// Domain returns the endpoint's domain.
func (e *Endpoint) Domain() string { return e.cfg.Domain }

// Settings returns the endpoint's settings.
func (e *Endpoint) Settings() policy.Settings { return e.cfg.Settings }

// OnInbound sets a function called with the receiver's view of every
// inbound negotiation when it ends.
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
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if !e.cfg.Unlisted {
		e.cfg.Net.Register(e.cfg.Domain, ln.Addr().String())
	}
	e.wg.Add(1)
	go e.acceptLoop()
	return nil
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
	e.wg.Wait()
	return err
}

func (e *Endpoint) acceptLoop() {
	defer e.wg.Done()
	limit := e.cfg.MaxConns
	if limit <= 0 {
		limit = DefaultMaxConns
	}
	slots := make(chan struct{}, limit)
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			// Refuse at once, without reading: the peer may be flooding.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write([]byte(headerXML(e.cfg.Domain, "", newStreamID()) +
				streamErrorXML("resource-constraint", fmt.Sprintf("more than %d connections at once", limit)) + "</stream:stream>"))
			c.Close()
			continue
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer func() { <-slots }()
			e.handleInbound(c)
		}()
	}
}

// side is one end of one connection: who this endpoint is on it and what
// it has negotiated so far.
type side struct {
	ep       *Endpoint
	role     Side
	peerRole Side
	conn     string // main or verify
	peer     string // the other end's domain
	raw      net.Conn
	c        *recConn
	tr       *trace
	step     Step
	secure   bool
	streamID string // id of the current stream (the receiving side's)
	// peerCert is the certificate the peer presented in TLS, if any, and
	// certErr what is wrong with it (nil when it is valid).
	peerCert *x509.Certificate
	certErr  error
	release  func() // ends this side's claim on a shared trace
	method   policy.Method
	deadline time.Time // when this side gives up

	// Dialback verification: what a verify connection asks and learns,
	// and whether an authoritative side has answered.
	askKey, askID string
	verdict       bool
	verified      bool

	bg sync.WaitGroup // work the side started and must wait for

	seenIDs []string // stream ids the receiver gave, to catch reuse
}

// background runs f beside the negotiation; the side waits for it before
// it ends.
func (s *side) background(f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
}

func (s *side) label(r Side, domain string) string {
	if domain == "" {
		domain = "?"
	}
	return string(r) + " " + domain
}

func (s *side) relabel() {
	s.c.me = s.label(s.role, s.ep.cfg.Domain)
	s.c.peer = s.label(s.peerRole, s.peer)
	s.c.conn = s.conn
}

// read reads the next element within the endpoint's limits.
func (s *side) read(r xml.TokenReader) (*element, error) {
	return readElementWith(r, s.ep.cfg.Limits.orDefault())
}

// send writes elements to the peer in one write (one TLS record, one
// system call) and records each of them as its own transcript entry.
func (s *side) send(elements ...string) error {
	return s.c.writeElements(elements...)
}

// failed is an error whose failure has been recorded already.
type failed struct{ f Failure }

func (e failed) Error() string { return e.f.String() }

// fail records a failure raised by this side and returns it as an error.
func (s *side) fail(step Step, condition, msg string) error {
	return s.record(s.role, step, condition, msg)
}

// peerFail records a failure the peer raised.
func (s *side) peerFail(step Step, condition, msg string) error {
	return s.record(s.peerRole, step, condition, msg)
}

func (s *side) record(by Side, step Step, condition, msg string) error {
	f := Failure{Step: s.onConn(step), Condition: condition, By: by, Message: msg, Conn: s.conn}
	s.tr.fail(f)
	return failed{f}
}

// onConn maps a step to what it is part of: on a verify connection
// everything is part of the dialback verification.
func (s *side) onConn(step Step) Step {
	if s.conn == "verify" && step != StepTimeout {
		return StepDialbackVerify
	}
	return step
}

// refuse records a failure this side raises and then tells the peer with
// the given elements: recorded first, so that the peer's record of it
// comes second and the root cause stays first.
func (s *side) refuse(step Step, condition, msg string, elements ...string) error {
	err := s.fail(step, condition, msg)
	_ = s.send(elements...)
	return err
}

// abort turns any error met during a step into a recorded failure, and
// tells the peer with a stream error when this side raised it.
func (s *side) abort(err error) error {
	var fe failed
	var le localError
	var pe peerStreamError
	var se stream.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return err
	case errors.As(err, &le):
		return s.refuse(s.step, le.Condition, le.Text, streamErrorXML(le.Condition, le.Text), "</stream:stream>")
	case errors.As(err, &pe):
		_ = s.send("</stream:stream>")
		return s.peerFail(s.step, pe.Condition, orDefault(pe.Text, "the "+string(s.peerRole)+" sent a stream error"))
	case errors.As(err, &se):
		text := ""
		if len(se.Text) > 0 {
			text = se.Text[0].Value
		}
		_ = s.send("</stream:stream>")
		return s.peerFail(s.step, se.Err, orDefault(text, "the "+string(s.peerRole)+" sent a stream error"))
	case isTimeout(err):
		f := Failure{Step: StepTimeout, Condition: "connection-timeout", By: s.role, During: s.onConn(s.step), Conn: s.conn,
			Message: fmt.Sprintf("no answer from the %s within %s while in step %s", s.peerRole, s.ep.timeout, s.step)}
		s.tr.fail(f)
		// The deadline has passed; give the error a moment to go out.
		_ = s.raw.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_ = s.send(streamErrorXML("connection-timeout", f.Message), "</stream:stream>")
		return failed{f}
	case strings.Contains(err.Error(), "remote error: tls"):
		// In TLS 1.3 the client finishes its handshake before the server
		// has checked the client's certificate: the server's refusal
		// arrives as an alert on the first read.
		return s.peerFail(StepTLSHandshake, "bad-certificate", fmt.Sprintf("the %s aborted TLS: %v", s.peerRole, err))
	case isClosed(err) && !isSyntax(err):
		if errors.Is(err, errStreamClosed) {
			_ = s.send("</stream:stream>")
		}
		return s.peerFail(s.step, "connection-closed", fmt.Sprintf("the %s closed the connection during %s without an error", s.peerRole, s.step))
	}
	if isSyntax(err) {
		return s.refuse(s.step, "not-well-formed", err.Error(), streamErrorXML("not-well-formed", err.Error()), "</stream:stream>")
	}
	return s.refuse(s.step, "undefined-condition", err.Error(), streamErrorXML("undefined-condition", err.Error()), "</stream:stream>")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// arm bounds every read and write on raw by deadline and aborts them when
// ctx ends. mellium's own context handling is not used: it can clear a
// deadline it did not set (see the package notes in README).
func arm(ctx context.Context, raw net.Conn, deadline time.Time) (stop func() bool) {
	_ = raw.SetDeadline(deadline)
	return context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
}

// Initiate opens a stream to domain and negotiates it. The result is
// complete: it includes what the receiving and the authoritative side
// recorded, when they are endpoints of the same Network.
func (e *Endpoint) Initiate(ctx context.Context, domain string) *Result {
	return e.open(ctx, domain, func(s *side, sess *xmpp.Session) error { return s.pingAndClose(sess) })
}

// send opens a stream of this endpoint's own to domain, sends stanza on
// it and closes it: how a server answers a peer whose stream is one-way.
func (e *Endpoint) send(ctx context.Context, domain, stanza string) *Result {
	return e.open(ctx, domain, func(s *side, sess *xmpp.Session) error {
		if err := s.send(stanza, "</stream:stream>"); err != nil {
			return s.abort(err)
		}
		r := sess.TokenReader()
		defer r.Close()
		for {
			if _, err := s.read(r); err != nil {
				return nil
			}
		}
	})
}

// open opens a stream to domain, negotiates it, and once it is
// authenticated hands it to then.
func (e *Endpoint) open(ctx context.Context, domain string, then func(*side, *xmpp.Session) error) *Result {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	tr := newTrace()
	s := &side{ep: e, role: Initiator, peerRole: Receiver, conn: "main", peer: domain, tr: tr, step: StepTCP, deadline: deadline}
	result := func() *Result { return tr.result(Initiator, e.cfg.Domain, domain) }

	addr, err := e.cfg.Net.Resolve(ctx, domain)
	if err != nil {
		s.fail(StepTCP, "remote-server-not-found", fmt.Sprintf("cannot resolve %s: %v", domain, err))
		return result()
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		cond := "remote-connection-failed"
		if isTimeout(err) || ctx.Err() != nil {
			cond = "remote-server-timeout"
		}
		s.fail(StepTCP, cond, fmt.Sprintf("cannot connect to %s at %s: %v", domain, addr, err))
		return result()
	}
	s.raw = raw
	s.c = &recConn{Conn: raw, tr: tr, reads: e.cfg.RecordReads}
	s.relabel()
	l := e.cfg.Net.track(raw.LocalAddr().String(), tr, "main")
	stop := arm(ctx, raw, deadline)
	defer func() {
		stop()
		hangUp(raw, deadline)
		e.cfg.Net.untrack(raw.LocalAddr().String(), l, deadline.Add(100*time.Millisecond))
	}()

	sess, err := xmpp.NewSession(context.Background(), jid.MustParse(domain), jid.MustParse(e.cfg.Domain), s.c, xmpp.S2S, s.initiate())
	if err != nil {
		s.abort(err)
		return result()
	}
	s.step = StepStream
	if err := then(s, sess); err == nil {
		tr.succeed(Initiator, s.method)
	}
	return result()
}

// handleInbound serves one inbound connection: a stream from an
// initiating server, or a verify connection from a receiving server.
func (e *Endpoint) handleInbound(raw net.Conn) {
	defer raw.Close()
	deadline := time.Now().Add(e.timeout)
	stop := arm(e.ctx, raw, deadline)
	defer stop()
	var s *side
	defer func() { s.bg.Wait() }()
	tr := newTrace()
	s = &side{ep: e, role: Receiver, peerRole: Initiator, conn: "main", tr: tr, raw: raw, step: StepStream, deadline: deadline}
	s.c = &recConn{Conn: raw, tr: tr, reads: e.cfg.RecordReads}
	s.relabel()
	defer func() {
		if s.release != nil {
			s.release()
		}
	}()

	sess, err := xmpp.ReceiveSession(context.Background(), s.c, xmpp.S2S, s.receive())
	switch {
	case err == nil:
		// Report a foreign peer's negotiation as soon as it is
		// authenticated: it may keep the stream open for long.
		s.report()
		s.serveAuthenticated(sess)
		return
	case s.verified && isClosed(err):
		// A verify connection ends when the receiving server has its answer.
		_ = s.send("</stream:stream>")
	default:
		s.abort(err)
	}
	s.report()
}

// report hands the receiver's view of an inbound negotiation from a peer
// that is not an endpoint of this Network (a real server) to OnInbound.
func (s *side) report() {
	s.ep.mu.Lock()
	f := s.ep.inbound
	s.ep.mu.Unlock()
	if f != nil && s.role == Receiver && s.release == nil {
		f(s.tr.result(Receiver, s.peer, s.ep.cfg.Domain))
	}
}

// claim joins the trace of the endpoint at the other end of the
// connection, when it is one of ours.
func (s *side) claim() {
	tr, done, ok := s.ep.cfg.Net.claim(s.raw.RemoteAddr().String())
	if !ok {
		return
	}
	// What was recorded locally so far is the peer's header, if reads are
	// recorded; the shared trace has it already from the writer's side.
	s.tr, s.c.tr, s.release = tr, tr, done
	if l := s.ep.cfg.Net.linkConn(s.raw.RemoteAddr().String()); l == "verify" {
		s.conn, s.role, s.peerRole = "verify", Authoritative, Receiver
	}
	s.relabel()
}

// pingAndClose proves the authenticated stream carries stanzas with an
// XEP-0199 ping, then ends the stream. The answer may come back on this
// stream or, from servers that answer over a stream of their own (Prosody
// and ejabberd without bidi), on any inbound stream of this endpoint.
func (s *side) pingAndClose(sess *xmpp.Session) (err error) {
	id := "xmppneg-ping-" + newStreamID()
	elsewhere := s.ep.expectAnswer(id)
	defer s.ep.forgetAnswer(id)
	r := sess.TokenReader()
	type next struct {
		el  *element
		err error
	}
	elems := make(chan next, 1)
	go func() {
		defer close(elems)
		for {
			el, err := s.read(r)
			elems <- next{el, err}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		if err != nil {
			err = s.abort(err)
		} else {
			_ = s.send("</stream:stream>")
		}
		// The reader ends when the peer ends its stream, or at the deadline.
		for range elems {
		}
		r.Close()
	}()
	if err := s.send(fmt.Sprintf("<iq type='get' id='%s' from='%s' to='%s'><ping xmlns='%s'/></iq>", id, esc(s.ep.cfg.Domain), esc(s.peer), nsPing)); err != nil {
		return err
	}
	for {
		select {
		case <-elsewhere:
			return nil
		case n := <-elems:
			if n.err != nil {
				return n.err
			}
			if n.el.is(nsServer, "iq") && n.el.attr("id") == id {
				if n.el.attr("type") == "result" {
					return nil
				}
				return s.peerFail(StepStream, "ping-error", "the receiver answered the ping with an error")
			}
		}
	}
}

// closeStream ends our stream and waits, within the deadline, for the
// peer to end its own.
func (s *side) closeStream(sess *xmpp.Session) {
	_ = s.send("</stream:stream>")
	r := sess.TokenReader()
	defer r.Close()
	for {
		if _, err := s.read(r); err != nil {
			break
		}
	}
}

// hangUp closes a connection this endpoint opened. It first gives the
// accepting side a moment to close it, so that the TIME_WAIT state stays
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

// serveAuthenticated answers pings on an authenticated inbound stream
// until the initiator closes it.
func (s *side) serveAuthenticated(sess *xmpp.Session) {
	r := sess.TokenReader()
	defer r.Close()
	for {
		el, err := s.read(r)
		if err != nil {
			if isClosed(err) || errors.Is(err, errStreamClosed) {
				_ = s.send("</stream:stream>")
				return
			}
			s.abort(err)
			return
		}
		switch {
		case el.is(nsServer, "iq") && el.attr("type") == "get" && el.child(nsPing, "ping") != nil:
			pong := fmt.Sprintf("<iq type='result' id='%s' from='%s' to='%s'/>", esc(el.attr("id")), esc(s.ep.cfg.Domain), esc(s.peer))
			if s.release != nil {
				// Endpoints of this harness take the answer on the same
				// stream, as if bidirectional (XEP-0288): it spares a second
				// negotiation per ping.
				_ = s.send(pong)
				break
			}
			// Streams are one-way: a real server wants the answer on a
			// stream of ours, and refuses it on its own with
			// <not-authorized/>.
			peer := s.peer
			s.background(func() { s.ep.send(s.ep.ctx, peer, pong) })
		case el.is(nsServer, "iq") && (el.attr("type") == "result" || el.attr("type") == "error"):
			// The answer to a ping this endpoint sent on a stream of its own.
			s.ep.answer(el.attr("id"))
		case el.is(nsDialback, "verify"):
			// Prosody asks its db:verify only once its connection to the
			// authoritative server is authenticated.
			if err := s.answerVerify(el); err != nil {
				s.abort(err)
				return
			}
		}
	}
}
