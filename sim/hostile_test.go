package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy/outcome"
)

// Tests of an endpoint facing peers that mean harm (issue 14): what
// serve and probe meet on real networks.

// A key computed from what anyone knows of the authoritative server (its
// domain: the secret every installation used to derive from it) is
// answered invalid; the key made with its real secret is the control.
func TestForgedDialbackKeyRefused(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=NotSupported,sasl=NotSupported,dialback=true")
	header := dialbackHeader("victim.test")
	verify := func(key string) string {
		return fmt.Sprintf("<db:verify from='victim.test' to='b.test' id='s1'>%s</db:verify>", key)
	}
	forged := DialbackKey("xmppneg dialback secret of b.test", "victim.test", "b.test", "s1")
	got := rawUntil(t, b, "type=", header, verify(forged))
	assert.Contains(t, got, "type='invalid'", got)

	real := DialbackKey(b.secret, "victim.test", "b.test", "s1")
	got = rawUntil(t, b, "type=", header, verify(real))
	assert.Contains(t, got, "type='valid'", got)
}

// Two endpoints made without a secret share one (nodes of a domain in
// this process), and it is long and not made of the domain.
func TestDefaultSecretIsRandomPerProcess(t *testing.T) {
	w := newWorld(t)
	a := w.endpoint("a.test", "")
	b := w.endpoint("b.test", "")
	assert.Equal(t, a.secret, b.secret)
	assert.GreaterOrEqual(t, len(a.secret), 32)
	assert.NotContains(t, a.secret, "a.test")
	c := w.endpoint("c.test", "secret=given")
	assert.Equal(t, "given", c.secret)
}

// flood connects to e, sends head once and then fill over and over (up
// to 16 MiB, until the endpoint hangs up), and returns what the endpoint
// answered and how much the process allocated meanwhile.
func flood(t *testing.T, e *Endpoint, head, fill string) (reply string, allocated uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := net.DialTimeout("tcp", e.Addr(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := c.Write([]byte(head)); err != nil {
			return
		}
		chunk := []byte(strings.Repeat(fill, 64<<10/len(fill)))
		for written := 0; written < 16<<20; written += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return // hung up on: what is wanted
			}
		}
	}()
	var got strings.Builder
	_, _ = io.Copy(&got, c)
	<-sent
	runtime.ReadMemStats(&after)
	return got.String(), after.TotalAlloc - before.TotalAlloc
}

// Whatever a peer sends, one connection costs a bounded amount: budgets
// are enforced as bytes arrive, before the XML decoder buffers them.
func TestFloodsAreCutOffEarly(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=Optional,sasl=Optional,dialback=true", func(c *Config) { c.RecordReads = true })
	header := strings.TrimSuffix(rawHeader, ">")
	for _, tc := range []struct {
		name, head, fill, cond, want string
	}{
		{"whitespace before the header", "", " ", "policy-violation", "stream header larger than 4096 bytes"},
		{"whitespace between elements", rawHeader, " \n", "policy-violation", "more than 65536 bytes without a complete element"},
		// Text is refused as what it is, once the budget stops the run.
		{"text between elements", rawHeader, "spam", "bad-format", "text outside any element"},
		{"an endless element", rawHeader + "<message><body>", "spam", "policy-violation", "more than 65536 bytes without a complete element"},
		{"an endless attribute in the header", header + " x='", "a", "policy-violation", "stream header larger than 4096 bytes"},
		{"endless attributes in the header", header, " a='b'", "policy-violation", "stream header larger than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, allocated := flood(t, b, tc.head, tc.fill)
			assert.Contains(t, got, "<"+tc.cond+" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
			assert.Contains(t, got, tc.want)
			assert.True(t, strings.HasPrefix(got, "<?xml version='1.0'?><stream:stream"), "our header comes before the error: %.200q", got)
			// 16 MiB were on offer; a connection may cost about 1 MiB.
			assert.Less(t, allocated, uint64(2<<20), "allocated while flooded")
		})
	}
}

// A peer that is not speaking XML (an HTTP client, say) is told at once.
func TestNonXMLPeerToldAtOnce(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "")
	start := time.Now()
	got := rawUntil(t, b, "</stream:stream>", "GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
	assert.Less(t, time.Since(start), time.Second)
	assert.Contains(t, got, "<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
	assert.Contains(t, got, `not XML: the initiator&#39;s first bytes are &#34;GET / HTTP/1.1\r\nHost: b.test\r\n\r\n&#34;`)
	assert.True(t, strings.HasPrefix(got, "<?xml version='1.0'?><stream:stream"), "%q", got)
}

// A stream error is only ever sent inside our own stream (RFC 6120
// §4.9.1.1), a timeout's too.
func TestTimeoutErrorAfterOurHeader(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "", func(c *Config) { c.Timeout = 200 * time.Millisecond })
	got := rawUntil(t, b, "</stream:stream>")
	assert.Contains(t, got, "<connection-timeout")
	assert.True(t, strings.HasPrefix(got, "<?xml version='1.0'?><stream:stream"), "%q", got)
	got = rawUntil(t, b, "</stream:stream>", rawHeader)
	assert.Contains(t, got, "<connection-timeout")
	assert.Equal(t, 1, strings.Count(got, "<stream:stream"), "%q", got)
}

// A transcript keeps its first and last halves, and says what it cut.
func TestTranscriptIsBounded(t *testing.T) {
	tr := newTrace(time.Now)
	const n, size = 20000, 100
	for i := 0; i < n; i++ {
		tr.add(Entry{Conn: mainConn, XML: fmt.Sprintf("%-*d", size, i)})
	}
	got := tr.transcript()
	total := 0
	var cut []Entry
	for _, e := range got {
		total += len(e.XML)
		if e.From == "(xmppneg)" {
			cut = append(cut, e)
		}
	}
	assert.LessOrEqual(t, total, MaxTranscriptBytes+200)
	assert.Equal(t, "0", strings.TrimSpace(got[0].XML))
	assert.Equal(t, fmt.Sprint(n-1), strings.TrimSpace(got[len(got)-1].XML))
	require.Len(t, cut, 1)
	kept := len(got) - 1
	assert.Equal(t, fmt.Sprintf("<!-- %d entries (%d bytes) cut here: the transcript keeps its first and last 128 KiB -->", n-kept, (n-kept)*size), cut[0].XML)
}

// A 'from' that is not a domain is refused, never adopted as the peer's
// name: it would be printed.
func TestInjectedFromRefused(t *testing.T) {
	w := newWorld(t)
	var inbound []*Result
	done := make(chan struct{}, 4)
	b := w.endpoint("b.test", "")
	b.OnInbound(func(r *Result) { inbound = append(inbound, r); done <- struct{}{} })
	for _, tc := range []struct{ from, cond, why string }{
		{"x&#10;evil.test → b.test: authenticated with SASL over TLS", "invalid-from", "is not a domain"},
		{"evil\u009b2J.test", "invalid-from", "is not a domain"}, // raw C1: legal XML
		{"evil&#x202e;tset.b", "invalid-from", "is not a domain"},
		{"a..test", "invalid-from", "is not a domain"},
		{"evil&#x1b;[2J.test", "not-well-formed", "illegal character code U+001B"}, // not XML at all
	} {
		got := rawUntil(t, b, "</stream:stream>", strings.Replace(rawHeader, "from='evil.test'", "from='"+tc.from+"'", 1))
		assert.Contains(t, got, "<"+tc.cond+" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>", tc.from)
		assert.Contains(t, got, tc.why, tc.from)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("no inbound result")
		}
	}
	for _, r := range inbound {
		assert.Equal(t, "", r.Initiator)
		text := r.Explain()
		for _, e := range r.Transcript {
			text += e.From + e.To + e.XML
		}
		assert.NotContains(t, text, "\n"+"evil.test")
		assert.NotContains(t, text, "\x1b")
		assert.NotContains(t, text, "\u202e")
		assert.NotContains(t, text, "\u009b")
	}
}

// One address holding every connection it may have does not keep
// another from negotiating.
func TestOneSourceCannotLockEveryoneOut(t *testing.T) {
	w := newWorld(t)
	a := w.endpoint("a.test", "")
	b := w.endpoint("b.test", "", func(c *Config) { c.MaxConnsPerSource = 4 })
	hog := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
	for i := 0; i < 4; i++ {
		c, err := hog.Dial("tcp", b.Addr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte(rawHeader)) // then silence, held until b's deadline
		require.NoError(t, err)
		buf := make([]byte, 1)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, err = c.Read(buf) // b is serving it
		require.NoError(t, err)
	}
	c, err := hog.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	refused, _ := io.ReadAll(c)
	assert.Contains(t, string(refused), "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
	assert.Contains(t, string(refused), "more than 4 connections at once from 127.0.0.2")

	r := negotiate(t, a, b)
	assert.True(t, r.Outcome.OK(), r.Explain())
}

// Pings on an authenticated stream are answered over a stream of our
// own, one at a time: a thousand pings do not open a thousand
// connections.
func TestPingFloodOpensFewConnections(t *testing.T) {
	w := newWorld(t)
	spec := "tls=NotSupported,sasl=NotSupported,dialback=true"
	a := w.endpoint("a.test", spec)
	b := w.endpoint("b.test", spec)
	// b reaches a.test through a counter of connections.
	counter, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var opened atomic.Int32
	var relays sync.WaitGroup
	defer relays.Wait()
	defer counter.Close()
	go func() {
		for {
			in, err := counter.Accept()
			if err != nil {
				return
			}
			opened.Add(1)
			relays.Add(1)
			go func() {
				defer relays.Done()
				defer in.Close()
				out, err := net.DialTimeout("tcp", a.Addr(), time.Second)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.Close() }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	w.net.Register("a.test", counter.Addr().String())

	c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	header := dialbackHeader("a.test")
	got := readFor(t, c, "</stream:features>", header)
	id := regexp.MustCompile(`id='([^']+)'`).FindStringSubmatch(got)
	require.NotNil(t, id, got)
	key := DialbackKey(a.secret, "b.test", "a.test", id[1])
	got = readFor(t, c, "type=", fmt.Sprintf("<db:result from='a.test' to='b.test'>%s</db:result>", key))
	require.Contains(t, got, "type='valid'")
	require.Equal(t, int32(1), opened.Load(), "the verify connection")

	var pings strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&pings, "<iq type='get' id='p%d' from='a.test' to='b.test'><ping xmlns='urn:xmpp:ping'/></iq>", i)
	}
	pings.WriteString("</stream:stream>")
	readFor(t, c, "</stream:stream>", pings.String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.WaitIdle(ctx))
	answers := int(opened.Load()) - 1
	assert.GreaterOrEqual(t, answers, 1, "the first ping is answered")
	assert.Less(t, answers, 50, "not one connection per ping")
}

// The accept loop outlives running out of file descriptors: it backs
// off, says so once, and serves again when descriptors are free. The
// endpoint runs in a child process (this test binary again) with a low
// RLIMIT_NOFILE.
func TestAcceptSurvivesRunningOutOfFiles(t *testing.T) {
	if os.Getenv("XMPPNEG_TEST_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAcceptSurvivesRunningOutOfFiles$")
	cmd.Env = append(os.Environ(), "XMPPNEG_TEST_EMFILE_CHILD=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	waitLog := func(substr string) {
		t.Helper()
		for {
			select {
			case l, ok := <-logs:
				require.True(t, ok, "the child ended before logging %q", substr)
				if strings.Contains(l, substr) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q in the child's log", substr)
			}
		}
	}
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "the child's address")
	addr := strings.TrimPrefix(sc.Text(), "ADDR ")

	var held []net.Conn
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		require.NoError(t, err)
		held = append(held, c)
	}
	waitLog("retrying")
	for _, c := range held {
		c.Close()
	}
	// Served again: a stream header is answered with features.
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
		_, _ = c.Write([]byte(rawHeader))
		br := bufio.NewReader(c)
		got, _ := br.ReadString('>')  // the XML declaration,
		more, _ := br.ReadString('>') // then the header
		got += more
		c.Close()
		if strings.Contains(got, "<stream:stream") || ctx.Err() != nil {
			break
		}
	}
	require.NoError(t, ctx.Err(), "never served again")
	waitLog("again")
	stdin.Close()
	require.NoError(t, cmd.Wait())
}

func emfileChild(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "", func(c *Config) {
		c.MaxConnsPerSource = 1000
		c.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	})
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	low := lim
	low.Cur = uint64(len(fds) + 20)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	fmt.Printf("ADDR %s\n", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent is done
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
}

// A hostile server is held to the same budgets by an initiating end (as
// probe is): a header followed by whitespace without end fails the
// negotiation early, with bounded memory.
func TestHostileServerFloodsTheInitiator(t *testing.T) {
	w := newWorld(t)
	a := w.endpoint("a.test", "", func(c *Config) { c.RecordReads = true })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='evil.test' to='a.test' id='x1' version='1.0'>"))
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for i := 0; i < 256; i++ {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	w.net.Register("evil.test", ln.Addr().String())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := a.Initiate(context.Background(), "evil.test")
	runtime.ReadMemStats(&after)
	<-served
	require.NotNil(t, r.Outcome.Failure, r.Explain())
	assert.Equal(t, outcome.PolicyViolation, r.Outcome.Failure.Condition, r.Explain())
	assert.Equal(t, outcome.Initiator, r.Outcome.Failure.By)
	assert.Contains(t, r.Outcome.Failure.Message, "more than 65536 bytes without a complete element")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(2<<20))
}

// Connections count against their IPv4 address, or their IPv6 /64: 16
// addresses of one /64 (a host has millions) filled the 256 slots when
// each IPv6 address counted apart.
func TestSourcesAreIPv4AddressesOrIPv6Slash64s(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"::1", "::2", true},
	} {
		a, b := sourceOf(net.ParseIP(tc.a)), sourceOf(net.ParseIP(tc.b))
		assert.Equal(t, tc.same, a == b, "%s (%s) and %s (%s)", tc.a, a, tc.b, b)
	}
	assert.Equal(t, "2001:db8:1:2::/64", sourceOf(net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd")))

	e := &Endpoint{}
	for i := range DefaultMaxConnsPerSource {
		ip := net.ParseIP(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		require.True(t, e.enter(sourceOf(ip), DefaultMaxConnsPerSource))
	}
	assert.False(t, e.enter(sourceOf(net.ParseIP("2001:db8:1:2::beef")), DefaultMaxConnsPerSource), "a 17th address of the /64 is refused")
	assert.True(t, e.enter(sourceOf(net.ParseIP("2001:db8:1:3::1")), DefaultMaxConnsPerSource), "another /64 is not")
}
