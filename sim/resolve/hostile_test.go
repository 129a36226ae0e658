package resolve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile is a DNS server on loopback, over UDP and TCP on one port,
// that answers as a domain's owner may: _xmpp-server._tcp.evil. lists 16
// SRV targets, and each target has PerHost A records (127.x.y.z, where
// nothing listens). Answers that do not fit in UDP come truncated (TC),
// as a real server sends them.
type Hostile struct {
	Addr    string
	PerHost int
	Queries atomic.Int32 // A and AAAA questions
	TCP     atomic.Int32 // questions over TCP

	mu    sync.Mutex
	hosts map[string]bool // the names asked for A or AAAA
}

func (h *Hostile) asked(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hosts[name] = true
}

func (h *Hostile) Hosts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hosts)
}

func startHostile(t *testing.T, perHost int) *Hostile {
	t.Helper()
	h := &Hostile{PerHost: perHost, hosts: map[string]bool{}}
	var udp net.PacketConn
	var tcp net.Listener
	for range 20 {
		var err error
		if udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			continue
		}
		if tcp, err = net.Listen("tcp", udp.LocalAddr().String()); err == nil {
			break
		}
		udp.Close()
		udp = nil
	}
	require.NotNil(t, tcp, "no port free for UDP and TCP both")
	h.Addr = udp.LocalAddr().String()
	servers := []*dns.Server{{PacketConn: udp, Handler: h}, {Listener: tcp, Handler: h}}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
	})
	return h
}

func (h *Hostile) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		h.TCP.Add(1)
	}
	hdr := func(t uint16) dns.RR_Header { return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET} }
	switch {
	case q.Qtype == dns.TypeSRV && name == ServiceStartTLS+".evil.":
		for i := range MaxTargets {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: uint16(i), Port: 5269, Target: fmt.Sprintf("t%d.evil.", i)})
		}
	case q.Qtype == dns.TypeA && strings.HasSuffix(name, ".evil."):
		h.Queries.Add(1)
		h.asked(name)
		var host int
		fmt.Sscanf(name, "t%d.", &host)
		for i := range h.PerHost {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4(127, byte(100+host), byte(i/250), byte(1+i%250))})
		}
		// The same address twice: it is tried once.
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4(127, byte(100+host), 0, 1)})
	case q.Qtype == dns.TypeAAAA:
		h.Queries.Add(1)
		h.asked(name)
	default:
		m.Rcode = dns.RcodeNameError
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := 512
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// 16 SRV targets behind which stand 248 A records each made a single
// db:result try ~3,970 connections. At most MaxAddrs addresses are
// tried, each once, in the targets' order, and no target past them is
// asked about. The A answers do not fit in UDP: they are asked again
// over TCP, not read as "no records".
func TestAddressesAreBoundedAcrossTargets(t *testing.T) {
	h := startHostile(t, 248)
	r := &Resolver{Server: h.Addr, Rand: rand.New(rand.NewPCG(1, 2))}
	res, err := r.Lookup(context.Background(), "evil")
	require.NoError(t, err)
	require.Len(t, res.Targets, MaxTargets)
	addrs := r.Addresses(context.Background(), res)
	require.Len(t, addrs, MaxAddrs)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.NoError(t, a.Err)
		assert.False(t, seen[a.Addr], "%s twice", a.Addr)
		seen[a.Addr] = true
		assert.Equal(t, "t0.evil", a.Target.Host, "the first target's addresses first (RFC 2782 order)")
	}
	assert.Equal(t, 1, h.Hosts(), "only the first target is asked about")
	assert.Positive(t, h.TCP.Load(), "the truncated answer was asked again over TCP")
	assert.Equal(t, 248+1-MaxAddrs, res.DroppedAddrs)
	for _, q := range res.Queries {
		assert.Less(t, len(q.Answer), 2048, "an answer's text stays short: %s %s", q.Type, q.Name)
	}
}

// Few addresses each: the targets are taken in order until MaxAddrs.
func TestAddressesTakeTargetsInOrder(t *testing.T) {
	h := startHostile(t, 3)
	r := &Resolver{Server: h.Addr, Rand: rand.New(rand.NewPCG(1, 2))}
	res, err := r.Lookup(context.Background(), "evil")
	require.NoError(t, err)
	addrs := r.Addresses(context.Background(), res)
	require.Len(t, addrs, MaxAddrs)
	var order []string
	for _, a := range addrs {
		if len(order) == 0 || order[len(order)-1] != a.Target.Host {
			order = append(order, a.Target.Host)
		}
	}
	assert.Equal(t, []string{"t0.evil", "t1.evil", "t2.evil", "t3.evil", "t4.evil", "t5.evil"}, order)
	assert.Equal(t, 6, h.Hosts(), "targets past the 16th address are not asked about")
}
