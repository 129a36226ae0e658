package sim

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy/outcome"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/resolve"
)

// dnsWorld is a world whose network finds unregistered domains through
// a loopback DNS server, as real servers do.
func dnsWorld(t *testing.T) (*world, *loopdns.Server) {
	t.Helper()
	d, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	w := newWorld(t)
	w.net.UseDNS(&resolve.Resolver{Server: d.Addr()})
	return w, d
}

func port(t *testing.T, addr string) uint16 {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return uint16(n)
}

func unlisted(c *Config) { c.Unlisted = true }

// SRV targets are tried in priority order until one answers; the
// result says what was asked and what was tried.
func TestInitiatorFollowsSRVTargets(t *testing.T) {
	w, d := dnsWorld(t)
	b := w.endpoint("b.test", "", unlisted)
	// Every listener is made before the dead port is freed: a later one
	// could be given that very port (seen: a.test's, "this server is
	// a.test, not b.test").
	a := w.endpoint("a.test", "")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadPort := port(t, dead.Addr().String())
	dead.Close() // nothing listens there any more
	require.NoError(t, d.SetHost("xmpp1.b.test", net.IPv4(127, 0, 0, 1)))
	require.NoError(t, d.SetHost("xmpp2.b.test", net.IPv4(127, 0, 0, 1)))
	d.SetSRV(resolve.ServiceStartTLS, "b.test",
		loopdns.SRV{Target: "xmpp2.b.test", Port: port(t, b.Addr()), Priority: 20},
		loopdns.SRV{Target: "xmpp1.b.test", Port: deadPort, Priority: 10})
	require.NoError(t, d.Set("a.test", a.Addr())) // for b's dialback and its answer to the ping
	r := negotiate(t, a, b)
	assert.True(t, r.Outcome.OK(), r.Explain())
	require.Len(t, r.Attempts, 2)
	assert.Equal(t, "xmpp1.b.test", r.Attempts[0].Target.Host)
	assert.Contains(t, r.Attempts[0].Result, "connection refused")
	assert.Equal(t, "connected", r.Attempts[1].Result)
	require.NotNil(t, r.Resolution)
	assert.Equal(t, "_xmpps-server._tcp.b.test.", r.Resolution.Queries[0].Name)
}

func TestDotTargetIsNoService(t *testing.T) {
	w, d := dnsWorld(t)
	d.SetSRV(resolve.ServiceStartTLS, "none.test", loopdns.SRV{Target: "."})
	a := w.endpoint("a.test", "")
	r := a.Initiate(context.Background(), "none.test")
	require.NotNil(t, r.Outcome.Failure)
	assert.Equal(t, outcome.RemoteServerNotFound, r.Outcome.Failure.Condition)
	assert.Contains(t, r.Outcome.Failure.Message, `offers no s2s service (SRV target ".")`)
}

// A direct TLS target (_xmpps-server) is used by an end that does direct
// TLS, and skipped, with the reason, by one that does not.
func TestDirectTLSTargets(t *testing.T) {
	w, d := dnsWorld(t)
	b := w.endpoint("b.test", "direct_tls=true", unlisted)
	require.NotEmpty(t, b.DirectAddr())
	d.SetSRV(resolve.ServiceDirectTLS, "b.test", loopdns.SRV{Target: "127.0.0.1", Port: port(t, b.DirectAddr()), Priority: 5})
	d.SetSRV(resolve.ServiceStartTLS, "b.test", loopdns.SRV{Target: "127.0.0.1", Port: port(t, b.Addr()), Priority: 10})

	a := w.endpoint("a.test", "direct_tls=true")
	require.NoError(t, d.Set("a.test", a.Addr()))
	r := negotiate(t, a, b)
	assert.Equal(t, outcome.Succeeded(outcome.SASLOverTLS), r.Outcome, r.Explain())
	require.NotEmpty(t, r.Attempts)
	assert.True(t, r.Attempts[0].Target.DirectTLS)
	assert.Equal(t, "connected", r.Attempts[0].Result)
	require.NotEmpty(t, r.Offers)
	assert.True(t, r.Offers[0].TLS, "the first stream is already inside TLS")

	old := w.endpoint("old.test", "")
	require.NoError(t, d.Set("old.test", old.Addr()))
	r = negotiate(t, old, b)
	assert.True(t, r.Outcome.OK(), r.Explain())
	assert.Contains(t, r.Attempts[0].Result, "skipped: direct TLS, which this end does not use")
	assert.False(t, r.Offers[0].TLS, "STARTTLS on the other target")
}

// A hostile DNS: 16 SRV targets, 40 A records behind each, nothing
// listening. One db:result to us made the receiver try every address
// (~3,970 with 248 records each) and log them all on one line. At most
// resolve.MaxAddrs are tried, and the failure names a few.
func TestHostileDNSCostsSixteenAttempts(t *testing.T) {
	w, d := dnsWorld(t)
	a := w.endpoint("a.test", "")
	var recs []loopdns.SRV
	for i := range resolve.MaxTargets {
		host := fmt.Sprintf("t%d.evil.test", i)
		recs = append(recs, loopdns.SRV{Target: host, Port: 9, Priority: uint16(i)})
		var ips []net.IP
		for j := range 40 {
			ips = append(ips, net.IPv4(127, byte(100+i), 0, byte(1+j)))
		}
		require.NoError(t, d.SetHost(host, ips...))
	}
	d.SetSRV(resolve.ServiceStartTLS, "evil.test", recs...)
	r := a.Initiate(context.Background(), "evil.test")
	require.NotNil(t, r.Outcome.Failure)
	assert.Len(t, r.Attempts, resolve.MaxAddrs)
	assert.Equal(t, 40-resolve.MaxAddrs, r.Resolution.DroppedAddrs)
	assert.Contains(t, r.Outcome.Failure.Message, fmt.Sprintf("and %d more addresses", resolve.MaxAddrs-4))
	assert.Less(t, len(r.Outcome.Failure.Message), 1024, "the failure's line stays short")
}

// A server that accepts and says nothing: the TLS version scan says it
// timed out, not that the version was refused or STARTTLS not offered.
func TestScanSaysTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c) // until the scan hangs up
	}()
	s := ScanTLS(context.Background(), ln.Addr().String(), "silent.test", "a.test", false, tls.VersionTLS13, 200*time.Millisecond)
	assert.True(t, s.Connected)
	assert.True(t, s.TimedOut, s.Error)
	assert.Contains(t, s.Error, "timed out")
	ln.Close()
	<-done
}
