// Package relay is a recording relay between two real XMPP servers. It
// listens where the DNS of one server (the peer) points for the other
// (the domain), forwards every connection to the domain's real address,
// and records what travels both ways, element by element. When the
// domain answers <starttls/> with <proceed/>, the relay terminates TLS on
// both legs: towards the peer with the domain's own certificate and key,
// towards the domain presenting the peer's own certificate when the peer
// presented it (the harness issued both), so that each server still sees
// its real peer's certificate and the recording shows what travelled
// inside TLS.
//
// What the relay cannot make transparent (see docs/federation.md): each
// leg negotiates its own TLS version and cipher with the relay; a
// handshake one server aborts is seen by the other as a connection
// closed after TLS, not as the alert; a certificate the relay does not
// hold (neither server's own) cannot be presented onwards; direct TLS
// (XEP-0368) is not relayed.
package relay

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Config says what a relay stands for.
type Config struct {
	// Domain is the server the relay stands for, Target its real address.
	Domain, Target string
	// Cert is Domain's certificate (nil: it has none), presented to the
	// peer that connects.
	Cert *tls.Certificate
	// PeerCerts are the certificates of the servers that may connect:
	// the one a peer presents is presented onwards to Domain.
	PeerCerts []*tls.Certificate
	// Roots are the CAs named in the relay's certificate request: those
	// Domain trusts, so that the peer decides on its certificate as it
	// would facing Domain.
	Roots *x509.CertPool
	// Recorder records every connection.
	Recorder *Recorder
}

// Relay is a listening relay.
type Relay struct {
	cfg Config
	ln  net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// maxElement bounds one element the relay keeps whole for its
// recording: a peer's huge element is forwarded, recorded cut.
const maxElement = 64 << 10

// handshakeTimeout bounds each TLS handshake of the relay.
const handshakeTimeout = 10 * time.Second

// Start listens on a loopback port and relays until Close.
func Start(cfg Config) (*Relay, error) {
	if cfg.Recorder == nil {
		return nil, errors.New("relay: no recorder")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r := &Relay{cfg: cfg, ln: ln, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is where the relay listens.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Close stops listening, closes every connection and waits for them.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = true
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
	c.Close()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			r.serve(c)
		}()
	}
}

// serve relays one connection from the peer.
func (r *Relay) serve(client net.Conn) {
	rc := r.cfg.Recorder.open(r.cfg.Domain)
	server, err := net.DialTimeout("tcp", r.cfg.Target, 5*time.Second)
	if err != nil {
		rc.note(fmt.Sprintf("the relay could not reach %s at %s: %v", r.cfg.Domain, r.cfg.Target, err))
		rc.close(peerSide)
		return
	}
	if !r.track(server) {
		return
	}
	defer r.untrack(server)

	p := &pipe{r: r, rc: rc, client: client, server: server,
		cr: bufio.NewReader(client), sr: bufio.NewReader(server),
		starttls: make(chan bool, 1), switched: make(chan struct{})}
	p.run()
}

// The sides of a relayed connection: the peer connected (the initiator
// of the stream), the domain accepted.
const (
	peerSide   = "peer"
	domainSide = "domain"
)

// pipe is one relayed connection.
type pipe struct {
	r              *Relay
	rc             *connRecord
	client, server net.Conn
	cr, sr         *bufio.Reader

	// starttls carries the domain's answer to <starttls/>: true for
	// <proceed/>. switched is closed once both legs are TLS (or the
	// switch failed, then both are closed).
	starttls chan bool
	switched chan struct{}
	tlsOK    bool
	tc, ts   net.Conn
}

func (p *pipe) run() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(peerSide) }()
	go func() { defer wg.Done(); p.pump(domainSide) }()
	wg.Wait()
}

// pump forwards what one side sends to the other, recording it.
func (p *pipe) pump(from string) {
	src, dst := p.client, p.server
	br := p.cr
	if from == domainSide {
		src, dst, br = p.server, p.client, p.sr
	}
	sp := newSplitter(maxElement)
	inTLS := false
	buf := make([]byte, 16<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			// Recorded before it is forwarded: an answer cannot be
			// recorded before what it answers.
			els := sp.feed(buf[:n])
			for _, el := range els {
				p.rc.add(from, inTLS, el)
				if from == peerSide && !inTLS {
					p.rc.identify(el)
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.rc.close(from)
				src.Close()
				return
			}
			for _, el := range els {
				if inTLS {
					continue
				}
				switch {
				case from == peerSide && isStartTLS(el):
					// The peer sends nothing more until it has the
					// answer; its next bytes may be a ClientHello.
					if !p.waitSwitch() {
						return
					}
					if p.tlsOK {
						src, dst, br, inTLS = p.tc, p.ts, bufio.NewReader(p.tc), true
						sp = newSplitter(maxElement)
					}
				case from == domainSide && isProceed(el):
					p.answer(true)
					if !p.doSwitch() {
						return
					}
					src, dst, br, inTLS = p.ts, p.tc, bufio.NewReader(p.ts), true
					sp = newSplitter(maxElement)
				case from == domainSide && isTLSFailure(el):
					p.answer(false)
				}
			}
		}
		if err != nil {
			p.rc.close(from)
			// Half-close: the other side may still have something to say.
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}

// answer passes on the domain's answer to <starttls/>; a second one
// (a misbehaving server) is dropped.
func (p *pipe) answer(proceed bool) {
	select {
	case p.starttls <- proceed:
	default:
	}
}

// waitSwitch waits for the domain's answer to <starttls/> and, after a
// <proceed/>, for the TLS switch; it reports whether the pump goes on.
func (p *pipe) waitSwitch() bool {
	select {
	case ok := <-p.starttls:
		if !ok {
			return true
		}
	case <-time.After(handshakeTimeout):
		return true // no answer: the pump reads on as before
	}
	<-p.switched
	return p.tlsOK
}

// doSwitch terminates TLS on both legs: first with the peer (as the
// domain, with its certificate), then with the domain (as the peer,
// with its certificate when the peer presented one).
func (p *pipe) doSwitch() bool {
	defer close(p.switched)
	cfg := p.r.cfg
	fail := func(by string, err error) bool {
		p.rc.handshakeFailed(by, err)
		p.client.Close()
		p.server.Close()
		return false
	}
	if cfg.Cert == nil {
		return fail(domainSide, errors.New("the relay holds no certificate of "+cfg.Domain+" to present"))
	}
	if p.cr.Buffered() > 0 || p.sr.Buffered() > 0 {
		return fail("", errors.New("bytes arrived before TLS started; the relay cannot place them"))
	}
	var peerCert []*x509.Certificate
	tc := tls.Server(p.client, &tls.Config{
		Certificates: []tls.Certificate{*cfg.Cert},
		ClientAuth:   tls.RequestClientCert,
		ClientCAs:    cfg.Roots,
		MinVersion:   tls.VersionTLS10,
	})
	_ = p.client.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return fail(peerSide, err)
	}
	_ = p.client.SetDeadline(time.Time{})
	peerCert = tc.ConnectionState().PeerCertificates
	var present []tls.Certificate
	if len(peerCert) > 0 {
		for _, c := range cfg.PeerCerts {
			if c != nil && c.Leaf != nil && peerCert[0].Equal(c.Leaf) {
				present = []tls.Certificate{*c}
				break
			}
		}
		if present == nil {
			p.rc.note(fmt.Sprintf("the peer presented a certificate the relay does not hold (%s); none is presented to %s", peerCert[0].Subject, cfg.Domain))
		}
	}
	ts := tls.Client(p.server, &tls.Config{
		ServerName:         cfg.Domain,
		Certificates:       present,
		InsecureSkipVerify: true, // each server checks the other's certificate itself
		MinVersion:         tls.VersionTLS10,
	})
	_ = p.server.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := ts.Handshake(); err != nil {
		return fail(domainSide, err)
	}
	_ = p.server.SetDeadline(time.Time{})
	p.tc, p.ts, p.tlsOK = tc, ts, true
	p.rc.tlsDone(tc.ConnectionState(), ts.ConnectionState())
	return true
}
