package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"xmppneg/policy/outcome"
	"xmppneg/policy/printable"
	"xmppneg/sim/resolve"
)

// trace collects what every party of one negotiation saw: the XML on the
// main connection and on the verify connection, and the failures each
// side raised, in the order they were raised. The side that raises a
// failure records it before telling its peer, so the first failure
// recorded is the root cause.
type trace struct {
	clock func() time.Time
	start time.Time

	mu         sync.Mutex
	entries    []Entry // the head of the transcript, and
	tail       []Entry // its tail once the head is full
	headBytes  int
	tailBytes  int
	cutEntries int // dropped between head and tail
	cutBytes   int
	failures   []outcome.Failure
	method     outcome.Method // set by the initiator once a stanza made the round trip
	recvMethod outcome.Method // set by the receiver when it accepted the peer
	authMethod outcome.Method // set by the initiator once authenticated, before the round trip
	tls        *TLSInfo
	streamIDs  []string
	offers     []Offer
	// hideVerify keeps the verify connection's failures from being the
	// root cause: the receiver kept them to itself (see unverifiable).
	hideVerify bool
	resolution *resolve.Result
	attempts   []Attempt
	notes      []string
	notesCut   int
}

// note records something an end did that is neither XML nor a failure,
// such as the answer it gave to a db:verify.
func (t *trace) note(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.notes) >= maxNotes {
		t.notesCut++
		return
	}
	t.notes = append(t.notes, printable.String(s))
}

// maxNotes bounds the notes of one negotiation: a peer can make an end
// note something for each stanza it sends.
const maxNotes = 100

func (t *trace) keptNotes() []string {
	notes := append([]string{}, t.notes...)
	if t.notesCut > 0 {
		notes = append(notes, fmt.Sprintf("(%d more notes not kept)", t.notesCut))
	}
	return notes
}

// failed reports whether any failure was recorded.
func (t *trace) failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.failures) > 0
}

func (t *trace) hideVerifyFailures() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hideVerify = true
}

func (t *trace) offer(secure bool, f features) {
	t.mu.Lock()
	defer t.mu.Unlock()
	mechs := slices.Clone(f.Mechanisms) // nil stays nil: no <mechanisms/> at all
	for i, m := range mechs {
		mechs[i] = printable.String(m)
	}
	t.offers = append(t.offers, Offer{TLS: secure, Features: printable.String(f.String()), Mechanisms: mechs})
}

func newTrace(clock func() time.Time) *trace { return &trace{clock: clock, start: clock()} }

func (t *trace) since() int64 { return t.clock().Sub(t.start).Microseconds() }

// MaxTranscriptBytes bounds the XML one negotiation's transcript keeps:
// its first half and its last half, and between them a line saying how
// much was cut. A peer that sends for as long as it is let cannot make
// the transcript grow without bound.
const MaxTranscriptBytes = 256 << 10

func (t *trace) add(e Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.Elapsed = t.since()
	// What a peer sent reaches terminals and files: no control
	// characters but line ends and tabs, which the printer indents.
	e.XML, e.From, e.To = printable.Block(e.XML), printable.String(e.From), printable.String(e.To)
	if t.headBytes+len(e.XML) <= MaxTranscriptBytes/2 && t.cutEntries == 0 && len(t.tail) == 0 {
		t.headBytes += len(e.XML)
		t.entries = append(t.entries, e)
		return
	}
	t.tail = append(t.tail, e)
	t.tailBytes += len(e.XML)
	for t.tailBytes > MaxTranscriptBytes/2 && len(t.tail) > 1 {
		t.cutEntries++
		t.cutBytes += len(t.tail[0].XML)
		t.tailBytes -= len(t.tail[0].XML)
		t.tail[0] = Entry{}
		t.tail = t.tail[1:]
	}
}

// transcript is the kept head, the cut, and the kept tail.
func (t *trace) transcript() []Entry {
	out := make([]Entry, 0, len(t.entries)+1+len(t.tail))
	out = append(out, t.entries...)
	if t.cutEntries > 0 {
		out = append(out, Entry{Elapsed: t.tail[0].Elapsed, Conn: t.tail[0].Conn, From: "(xmppneg)", To: "(transcript)",
			XML: fmt.Sprintf("<!-- %d entries (%d bytes) cut here: the transcript keeps its first and last %d KiB -->", t.cutEntries, t.cutBytes, MaxTranscriptBytes/2>>10)})
	}
	return append(out, t.tail...)
}

func (t *trace) fail(f outcome.Failure) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.Elapsed = t.since()
	f.Message = printable.String(f.Message)
	t.failures = append(t.failures, f)
}

// streamID records the id of a stream on the main connection; both of
// its ends report it.
func (t *trace) streamID(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id = printable.String(id)
	for _, x := range t.streamIDs {
		if x == id {
			return
		}
	}
	t.streamIDs = append(t.streamIDs, id)
}

// setResolution records how the main connection's peer was found.
func (t *trace) setResolution(r *resolve.Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resolution = r
}

// attempt records one target the main connection tried.
func (t *trace) attempt(a Attempt) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.attempts = append(t.attempts, a)
}

// setTLS records the TLS state of the main connection; both of its ends
// report it, and only the initiator knows what it made of the
// receiver's certificate.
func (t *trace) setTLS(info *TLSInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The peer's certificate says what it likes in its names.
	info.PeerCertificate, info.PeerSubject, info.PeerIssuer = printable.String(info.PeerCertificate), printable.String(info.PeerSubject), printable.String(info.PeerIssuer)
	if t.tls != nil && info.PeerCertificate == "" {
		info.PeerCertificate, info.PeerSubject, info.PeerIssuer = t.tls.PeerCertificate, t.tls.PeerSubject, t.tls.PeerIssuer
		info.PeerPurposes, info.PeerClientAuth = t.tls.PeerPurposes, t.tls.PeerClientAuth
	}
	t.tls = info
}

// authenticated records the method the initiator authenticated with,
// whatever the stanza sent next comes to: a success that happened is
// kept.
func (t *trace) authenticated(m outcome.Method) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.authMethod = m
}

func (t *trace) succeed(by outcome.Side, m outcome.Method) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if by == outcome.Initiator {
		t.method = m
	} else {
		t.recvMethod = m
	}
}

// result builds the Result as seen from side: the initiator's view counts
// a method only after a stanza made the round trip; the receiver's view
// (used when a foreign server initiates) once it accepted the peer.
func (t *trace) result(side outcome.Side, initiator, receiver string) *Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &Result{
		Initiator:  initiator,
		Receiver:   receiver,
		TLS:        t.tls,
		StreamIDs:  append([]string{}, t.streamIDs...),
		Duration:   t.clock().Sub(t.start),
		Transcript: t.transcript(),
		Offers:     append([]Offer{}, t.offers...),
		Recovered:  []outcome.Failure{},
		Resolution: t.resolution,
		Attempts:   append([]Attempt{}, t.attempts...),
		Notes:      t.keptNotes(),
		At:         t.start,
	}
	m := t.method
	if side != outcome.Initiator {
		m = t.recvMethod
	} else {
		r.Authenticated = t.authMethod
	}
	failures := t.failures
	if t.hideVerify {
		failures = nil
		for _, f := range t.failures {
			if f.Conn != verifyConn {
				failures = append(failures, f)
			}
		}
	}
	switch {
	case m != 0:
		r.Outcome = outcome.Succeeded(m)
		r.Recovered = distinct(failures)
	case len(failures) > 0:
		r.Outcome = outcome.Failed(failures[0])
	default:
		r.Outcome = outcome.Failed(outcome.Failure{Step: outcome.StepStream, Condition: outcome.UndefinedCondition, By: side,
			Message: "the negotiation ended without authentication and without an error"})
	}
	return r
}

// Network is the in-process world of a set of endpoints: where each
// domain is reached (the loopback equivalent of DNS SRV records), and the
// traces of the negotiations under way, so that the receiving and the
// authoritative side of a connection record into the same trace as the
// side that opened it.
type Network struct {
	mu     sync.Mutex
	addrs  map[string]string
	direct map[string]string // direct TLS addresses (XEP-0368), by domain
	links  map[string]*link
	// dns, when set, finds the domains nobody registered as a real
	// server does: SRV records, then the domain's addresses.
	dns *resolve.Resolver
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{addrs: map[string]string{}, direct: map[string]string{}, links: map[string]*link{}}
}

// UseDNS makes the network find domains nobody registered through r, as
// a real server does (see package resolve).
func (n *Network) UseDNS(r *resolve.Resolver) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dns = r
}

// RegisterDirectTLS makes domain reachable with direct TLS at addr too.
func (n *Network) RegisterDirectTLS(domain, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.direct[domain] = addr
}

// dialTarget is one address to try, and the target it came from.
type dialTarget struct {
	addr   string
	target resolve.Target
}

// targets lists where domain can be reached, in the order to try: its
// registered addresses (direct TLS first), or what DNS says.
func (n *Network) targets(ctx context.Context, domain string) ([]dialTarget, *resolve.Result, error) {
	n.mu.Lock()
	addr, ok := n.addrs[domain]
	daddr, dok := n.direct[domain]
	r := n.dns
	n.mu.Unlock()
	var out []dialTarget
	if dok {
		out = append(out, dialTarget{daddr, resolve.Target{Host: domain, DirectTLS: true, Via: "registered"}})
	}
	if ok {
		out = append(out, dialTarget{addr, resolve.Target{Host: domain, Via: "registered"}})
	}
	if len(out) > 0 || r == nil {
		if len(out) == 0 {
			return nil, nil, ErrNotFound{domain}
		}
		return out, nil, nil
	}
	res, err := r.Lookup(ctx, domain)
	if err != nil {
		return nil, res, err
	}
	// At most resolve.MaxAddrs addresses in all, each once: the
	// domain's DNS, which anyone may write, chooses them.
	var lastErr error
	for _, a := range r.Addresses(ctx, res) {
		if a.Err != nil {
			lastErr = a.Err
			continue
		}
		out = append(out, dialTarget{a.Addr, a.Target})
	}
	if len(out) == 0 {
		if lastErr == nil {
			lastErr = ErrNotFound{domain}
		}
		return nil, res, lastErr
	}
	return out, res, nil
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
	delete(n.direct, domain)
}

// ErrNotFound is returned by Resolve for a domain nobody registered.
type ErrNotFound struct{ Domain string }

func (e ErrNotFound) Error() string { return "no address known for " + e.Domain }

// Resolve returns the first address of domain to try: the registered
// one, or the first target DNS gives when the network uses it.
func (n *Network) Resolve(ctx context.Context, domain string) (string, error) {
	ts, _, err := n.targets(ctx, domain)
	if err != nil {
		return "", err
	}
	return ts[0].addr, nil
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
// remoteAddr, a function to call when done with it, and which connection
// it is (main or verify).
func (n *Network) claim(remoteAddr string) (*trace, func(), string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.links[remoteAddr]
	if !ok {
		return nil, nil, "", false
	}
	l.peer.Add(1)
	return l.tr, l.peer.Done, l.conn, true
}

// distinct drops the copies of a failure that both sides recorded: the
// side that raised it and the side that was told.
func distinct(fs []outcome.Failure) []outcome.Failure {
	type key struct {
		step      outcome.Step
		condition outcome.Condition
		by        outcome.Side
		message   string
	}
	seen := map[key]bool{}
	out := []outcome.Failure{}
	for _, f := range fs {
		k := key{f.Step, f.Condition, f.By, f.Message}
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}
