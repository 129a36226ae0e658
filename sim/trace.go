package sim

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"xmppneg/policy"
)

// trace collects what every party of one negotiation saw: the XML on the
// main connection and on the verify connection, and the failures each
// side raised, in the order they were raised. The side that raises a
// failure records it before telling its peer, so the first failure
// recorded is the root cause.
type trace struct {
	start time.Time

	mu         sync.Mutex
	entries    []Entry
	failures   []Failure
	method     policy.Method // set by the initiator once a stanza made the round trip
	recvMethod policy.Method // set by the receiver when it accepted the peer
	tls        *TLSInfo
	streamIDs  []string
	offers     []Offer
}

func (t *trace) offer(secure bool, features string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.offers = append(t.offers, Offer{TLS: secure, Features: features})
}

func newTrace() *trace { return &trace{start: time.Now()} }

func (t *trace) add(e Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.Elapsed = since(t.start)
	t.entries = append(t.entries, e)
}

func (t *trace) fail(f Failure) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.Elapsed = since(t.start)
	t.failures = append(t.failures, f)
}

// streamID records the id of a stream on the main connection; both of
// its ends report it.
func (t *trace) streamID(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range t.streamIDs {
		if x == id {
			return
		}
	}
	t.streamIDs = append(t.streamIDs, id)
}

// setTLS records the TLS state of the main connection; both of its ends
// report it, and only the initiator knows what it made of the
// receiver's certificate.
func (t *trace) setTLS(info *TLSInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tls != nil && info.PeerCertificate == "" {
		info.PeerCertificate, info.PeerSubject, info.PeerIssuer = t.tls.PeerCertificate, t.tls.PeerSubject, t.tls.PeerIssuer
	}
	t.tls = info
}

func (t *trace) succeed(by Side, m policy.Method) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if by == Initiator {
		t.method = m
	} else {
		t.recvMethod = m
	}
}

// result builds the Result as seen from side: the initiator's view counts
// a method only after a stanza made the round trip; the receiver's view
// (used when a foreign server initiates) once it accepted the peer.
func (t *trace) result(side Side, initiator, receiver string) *Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &Result{
		Initiator:  initiator,
		Receiver:   receiver,
		TLS:        t.tls,
		StreamIDs:  append([]string{}, t.streamIDs...),
		DurationMS: float64(time.Since(t.start).Microseconds()) / 1000,
		Transcript: append([]Entry{}, t.entries...),
		Offers:     append([]Offer{}, t.offers...),
	}
	m := t.method
	if side != Initiator {
		m = t.recvMethod
	}
	switch {
	case m != "":
		r.Outcome = string(m)
		r.Recovered = distinct(t.failures)
	case len(t.failures) > 0:
		r.Outcome = Failed
		f := t.failures[0]
		r.Failure = &f
	default:
		r.Outcome = Failed
		r.Failure = &Failure{Step: StepStream, Condition: "undefined-condition", By: side,
			Message: "the negotiation ended without authentication and without an error"}
	}
	return r
}

// recConn records every write, and optionally every read, on a connection
// into a trace. It keeps the TLS state visible to mellium.
type recConn struct {
	net.Conn
	tr       *trace
	conn     string // "main" or "verify"
	me, peer string
	secure   bool
	reads    bool
}

func (c *recConn) Write(b []byte) (int, error) {
	c.tr.add(Entry{Conn: c.conn, From: c.me, To: c.peer, TLS: c.secure, XML: string(b)})
	return c.Conn.Write(b)
}

func (c *recConn) writeElements(elements ...string) error {
	size := 0
	for _, e := range elements {
		c.tr.add(Entry{Conn: c.conn, From: c.me, To: c.peer, TLS: c.secure, XML: e})
		size += len(e)
	}
	b := make([]byte, 0, size)
	for _, e := range elements {
		b = append(b, e...)
	}
	_, err := c.Conn.Write(b)
	return err
}

func (c *recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.reads && n > 0 {
		c.tr.add(Entry{Conn: c.conn, From: c.peer, To: c.me, TLS: c.secure, XML: string(b[:n])})
	}
	return n, err
}

// ConnectionState lets mellium's Session report the TLS state.
func (c *recConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// Network is the in-process world of a set of endpoints: where each
// domain is reached (the loopback equivalent of DNS SRV records), and the
// traces of the negotiations under way, so that the receiving and the
// authoritative side of a connection record into the same trace as the
// side that opened it.
type Network struct {
	mu    sync.Mutex
	addrs map[string]string
	links map[string]*link
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{addrs: map[string]string{}, links: map[string]*link{}}
}

// Register makes domain reachable at addr (host:port on loopback).
func (n *Network) Register(domain, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[domain] = addr
}

// Unregister removes domain.
func (n *Network) Unregister(domain string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.addrs, domain)
}

// ErrNotFound is returned by Resolve for a domain nobody registered.
type ErrNotFound struct{ Domain string }

func (e ErrNotFound) Error() string { return "no address known for " + e.Domain }

// Resolve returns the address of domain.
func (n *Network) Resolve(_ context.Context, domain string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if a, ok := n.addrs[domain]; ok {
		return a, nil
	}
	return "", ErrNotFound{domain}
}

// link ties the local address of a connection that an endpoint opened to
// the trace it records into, and counts the handlers of the other end.
type link struct {
	tr   *trace
	conn string // main or verify
	peer sync.WaitGroup
}

func (n *Network) track(localAddr string, tr *trace, conn string) *link {
	l := &link{tr: tr, conn: conn}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[localAddr] = l
	return l
}

// untrack forgets the connection and waits, until deadline at most, for
// the handler of its other end to finish recording.
func (n *Network) untrack(localAddr string, l *link, deadline time.Time) {
	n.mu.Lock()
	delete(n.links, localAddr)
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { l.peer.Wait(); close(done) }()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// claim returns the trace of the connection whose other end has address
// remoteAddr, and a function to call when done with it.
func (n *Network) claim(remoteAddr string) (*trace, func(), bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.links[remoteAddr]
	if !ok {
		return nil, nil, false
	}
	l.peer.Add(1)
	return l.tr, l.peer.Done, true
}

// linkConn returns which connection ("main" or "verify") the tracked
// connection with the given local address is.
func (n *Network) linkConn(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l, ok := n.links[addr]; ok {
		return l.conn
	}
	return ""
}

// distinct drops the copies of a failure that both sides recorded: the
// side that raised it and the side that was told.
func distinct(fs []Failure) []Failure {
	type key struct {
		step      Step
		condition string
		by        Side
		message   string
	}
	seen := map[key]bool{}
	out := []Failure{}
	for _, f := range fs {
		k := key{f.Step, f.Condition, f.By, f.Message}
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}
