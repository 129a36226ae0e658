package relay

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"xmppneg/policy/printable"
	"xmppneg/sim"
)

// Recorder keeps what every relay of a federation saw, connection by
// connection. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	conns   []*connRecord
	dropped int // connections past maxConns, not kept
	marks   map[[2]string]time.Time
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{marks: map[[2]string]time.Time{}} }

// maxConns bounds the connections a recorder keeps: a server that
// reconnects in a loop cannot fill memory. A mesh of the federation
// suite sees a few thousand (five kinds: about 1,500); 200 was too few.
const maxConns = 20000

// maxEntries and maxBytes bound what is kept of one connection.
const (
	maxEntries = 500
	maxBytes   = 1 << 20
)

// Mark says that the stream from from to to is wanted from at on: the
// transcript's times count from there.
func (r *Recorder) Mark(from, to string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks[[2]string{from, to}] = at
}

// connRecord is one relayed connection: opened by peer to domain. The
// peer is who its first stream header says it is (from=).
type connRecord struct {
	r            *Recorder
	peer, domain string
	start        time.Time

	entries  []rawEntry
	bytes    int
	cut      int
	closed   map[string]time.Time // by side
	failedTL *handshakeFailure
	tls      *tlsLegs
	notes    []string
}

type rawEntry struct {
	at   time.Time
	side string // peerSide or domainSide
	tls  bool
	xml  string
}

type handshakeFailure struct {
	by  string // the side whose leg failed, "" when the relay gave up
	err error
	at  time.Time
}

type tlsLegs struct{ peer, domain tls.ConnectionState }

func (r *Recorder) open(domain string) *connRecord {
	c := &connRecord{r: r, domain: domain, start: time.Now(), closed: map[string]time.Time{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.conns) < maxConns {
		r.conns = append(r.conns, c)
	} else {
		r.dropped++
	}
	return c
}

func (c *connRecord) add(side string, inTLS bool, xml string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if len(c.entries) >= maxEntries || c.bytes+len(xml) > maxBytes {
		c.cut++
		return
	}
	c.bytes += len(xml)
	c.entries = append(c.entries, rawEntry{at: time.Now(), side: side, tls: inTLS, xml: printable.String(xml)})
}

var fromAttr = regexp.MustCompile(`\sfrom=['"]([^'"]{1,1000})['"]`)

// identify learns the peer from what it sends before TLS: its stream
// header's from=, or, for a pre-1.0 header that has none (jabberd2
// without a certificate), the from= of its first db:result or
// db:verify.
func (c *connRecord) identify(xml string) {
	head := xml
	switch {
	case strings.Contains(xml, "<stream:stream"):
		head = xml[strings.Index(xml, "<stream:stream"):]
	case isDialback(xml, "result") || isDialback(xml, "verify"):
	default:
		return
	}
	if i := strings.IndexByte(head, '>'); i >= 0 {
		head = head[:i]
	}
	m := fromAttr.FindStringSubmatch(head)
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.peer == "" && m != nil {
		c.peer = strings.ToLower(m[1])
	}
}

func (c *connRecord) close(side string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if _, ok := c.closed[side]; !ok {
		c.closed[side] = time.Now()
	}
}

func (c *connRecord) note(s string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if len(c.notes) < 20 {
		c.notes = append(c.notes, printable.String(s))
	}
}

func (c *connRecord) handshakeFailed(by string, err error) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.failedTL = &handshakeFailure{by: by, err: err, at: time.Now()}
	now := time.Now()
	for _, s := range []string{peerSide, domainSide} {
		if _, ok := c.closed[s]; !ok {
			c.closed[s] = now
		}
	}
}

func (c *connRecord) tlsDone(peer, domain tls.ConnectionState) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.tls = &tlsLegs{peer: peer, domain: domain}
	c.notes = append(c.notes, fmt.Sprintf("TLS: %s with %s %s (%s), with %s %s (%s)",
		"the relay", c.peer, tls.VersionName(peer.Version), tls.CipherSuiteName(peer.CipherSuite),
		c.domain, tls.VersionName(domain.Version), tls.CipherSuiteName(domain.CipherSuite)))
}

// ended reports whether both sides closed the connection.
func (c *connRecord) ended() bool { return len(c.closed) == 2 }

// splitter cuts a byte stream into what a transcript shows: the stream
// header (with the XML declaration before it), each top-level element
// whole, and the stream's end tag. Whitespace between them is dropped.
type splitter struct {
	buf   []byte
	depth int // 0 before the stream header, 1 inside the stream
	most  int
}

func newSplitter(most int) *splitter { return &splitter{most: most} }

// feed adds b and returns the pieces it completed.
func (s *splitter) feed(b []byte) []string {
	s.buf = append(s.buf, b...)
	var out []string
	for {
		s.buf = bytes.TrimLeft(s.buf, " \t\r\n")
		if len(s.buf) == 0 {
			return out
		}
		n := s.next()
		if n < 0 {
			if len(s.buf) > s.most {
				// Too big to keep whole: recorded cut, and the splitter
				// starts afresh on what comes next.
				out = append(out, string(s.buf[:s.most])+"…")
				s.buf = s.buf[:0]
			}
			return out
		}
		out = append(out, string(s.buf[:n]))
		s.buf = s.buf[n:]
	}
}

// next returns the length of the complete piece at the start of buf, or
// -1 when more bytes are needed.
func (s *splitter) next() int {
	b := s.buf
	if b[0] != '<' {
		// Text at the stream's level: up to the next tag.
		if i := bytes.IndexByte(b, '<'); i >= 0 {
			return i
		}
		return len(b)
	}
	if bytes.HasPrefix(b, []byte("<?")) {
		// The XML declaration goes with the header after it.
		end := bytes.Index(b, []byte("?>"))
		if end < 0 {
			return -1
		}
		rest := bytes.TrimLeft(b[end+2:], " \t\r\n")
		if len(rest) == 0 {
			return -1
		}
		save := s.buf
		s.buf = rest
		n := s.next()
		s.buf = save
		if n < 0 {
			return -1
		}
		return len(b) - len(rest) + n
	}
	if s.depth == 0 || bytes.HasPrefix(b, []byte("<stream:stream")) {
		// The stream header, or a restart's (after TLS or SASL).
		end, _, _ := tagEnd(b, 0)
		if end < 0 {
			return -1
		}
		s.depth = 1
		return end
	}
	if bytes.HasPrefix(b, []byte("</")) {
		end, _, _ := tagEnd(b, 0)
		if end < 0 {
			return -1
		}
		s.depth = 0
		return end
	}
	// A top-level element: up to its end tag.
	depth, i := 0, 0
	for i < len(b) {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return -1
		}
		i += j
		end, closing, selfClosing := tagEnd(b, i)
		if end < 0 {
			return -1
		}
		switch {
		case closing:
			depth--
		case !selfClosing && !bytes.HasPrefix(b[i:], []byte("<!")) && !bytes.HasPrefix(b[i:], []byte("<?")):
			depth++
		}
		i = end
		if depth == 0 {
			return i
		}
	}
	return -1
}

// tagEnd returns the index after the tag starting at b[i] ('<'), and
// whether it is an end tag or an empty-element tag; -1 when incomplete.
func tagEnd(b []byte, i int) (end int, closing, selfClosing bool) {
	closing = i+1 < len(b) && b[i+1] == '/'
	var quote byte
	for k := i + 1; k < len(b); k++ {
		switch ch := b[k]; {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '>':
			return k + 1, closing, b[k-1] == '/'
		}
	}
	return -1, false, false
}

// Entries returns a connection's entries as a transcript's, with times
// from t0 and the parties named by their part in the direction.
func (c *connRecord) transcript(conn string, t0 time.Time, labels map[string]string) []sim.Entry {
	var out []sim.Entry
	for _, e := range c.entries {
		other := domainSide
		if e.side == domainSide {
			other = peerSide
		}
		out = append(out, sim.Entry{Elapsed: e.at.Sub(t0).Microseconds(), Conn: conn, From: labels[e.side], To: labels[other],
			TLS: e.tls, XML: e.xml, Read: true})
	}
	return out
}

// SimTLS is the domain leg's TLS as reports show it.
func (c *connRecord) simTLS() *sim.TLSInfo {
	if c.tls == nil {
		return nil
	}
	st := c.tls.domain
	info := &sim.TLSInfo{Version: tls.VersionName(st.Version), CipherSuite: tls.CipherSuiteName(st.CipherSuite)}
	if len(st.PeerCertificates) > 0 {
		info.PeerSubject = st.PeerCertificates[0].Subject.String()
		info.PeerIssuer = st.PeerCertificates[0].Issuer.String()
	}
	return info
}
