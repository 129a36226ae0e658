package resolve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/sim/loopdns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startDNS(t *testing.T) (*loopdns.Server, *Resolver) {
	t.Helper()
	s, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, &Resolver{Server: s.Addr(), Rand: rand.New(rand.NewPCG(1, 2))}
}

func hosts(ts []Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Host)
	}
	return out
}

// Direct TLS and STARTTLS targets are merged and ordered by priority;
// within a priority, by weight.
func TestLookupMergesAndOrdersServices(t *testing.T) {
	d, r := startDNS(t)
	d.SetSRV(ServiceDirectTLS, "a.test", loopdns.SRV{Target: "tls1.a.test", Port: 5270, Priority: 10, Weight: 1})
	d.SetSRV(ServiceStartTLS, "a.test",
		loopdns.SRV{Target: "backup.a.test", Port: 5269, Priority: 20},
		loopdns.SRV{Target: "main.a.test", Port: 5269, Priority: 5, Weight: 10})
	res, err := r.Lookup(context.Background(), "a.test")
	require.NoError(t, err)
	assert.Equal(t, []string{"main.a.test", "tls1.a.test", "backup.a.test"}, hosts(res.Targets))
	assert.True(t, res.Targets[1].DirectTLS)
	assert.Equal(t, "_xmpps-server._tcp SRV", res.Targets[1].Via)
	require.Len(t, res.Queries, 2)
	assert.Equal(t, "_xmpps-server._tcp.a.test.", res.Queries[0].Name)
}

// A domain listing more targets than MaxTargets gets the first ones
// tried. (Plain DNS over UDP fits about 20 short ones in 512 bytes.)
func TestTargetsAreBounded(t *testing.T) {
	d, r := startDNS(t)
	var recs []loopdns.SRV
	const n = MaxTargets + 3
	for i := 0; i < n; i++ {
		recs = append(recs, loopdns.SRV{Target: fmt.Sprintf("h%d.m", i), Port: 5269, Priority: uint16(i)})
	}
	d.SetSRV(ServiceStartTLS, "m", recs...)
	res, err := r.Lookup(context.Background(), "m")
	require.NoError(t, err)
	require.Len(t, res.Targets, MaxTargets)
	assert.Equal(t, "h0.m", res.Targets[0].Host)
	assert.Equal(t, n-MaxTargets, res.Dropped)
}

func TestDotTargetMeansNotOffered(t *testing.T) {
	d, r := startDNS(t)
	d.SetSRV(ServiceStartTLS, "none.test", loopdns.SRV{Target: "."})
	_, err := r.Lookup(context.Background(), "none.test")
	assert.ErrorIs(t, err, ErrNoService)

	// The other service still counts.
	d.SetSRV(ServiceDirectTLS, "none.test", loopdns.SRV{Target: "tls.none.test", Port: 5270})
	res, err := r.Lookup(context.Background(), "none.test")
	require.NoError(t, err)
	assert.Equal(t, []string{ServiceStartTLS}, res.NotOffered)
	assert.Equal(t, []string{"tls.none.test"}, hosts(res.Targets))
}

func TestWithoutSRVTheDomainOn5269(t *testing.T) {
	d, r := startDNS(t)
	require.NoError(t, d.SetHost("plain.test", net.IPv4(127, 0, 0, 7)))
	res, err := r.Lookup(context.Background(), "plain.test")
	require.NoError(t, err)
	require.Len(t, res.Targets, 1)
	assert.Equal(t, Target{Host: "plain.test", Port: DefaultPort, Via: "fallback to the domain's A/AAAA records"}, res.Targets[0])
	ips, err := r.Addrs(context.Background(), res, "plain.test")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.7", ips[0].String())
	_, err = r.Addrs(context.Background(), res, "nowhere.test")
	assert.ErrorContains(t, err, "nowhere.test has no A or AAAA record")
	assert.Contains(t, res.Queries[len(res.Queries)-1].Answer, "NXDOMAIN")
}

// Weighted order, as RFC 2782 computes it: a random number from 0 to
// the sum of weights, inclusive, against running sums. Of weights 1 and
// 9 (in that order), the heavy record goes first with probability 9/11.
func TestOrderFollowsWeights(t *testing.T) {
	heavy := &dns.SRV{Target: "heavy.", Weight: 9}
	light := &dns.SRV{Target: "light.", Weight: 1}
	rnd := rand.New(rand.NewPCG(3, 4))
	first := 0
	for i := 0; i < 2000; i++ {
		if Order([]*dns.SRV{light, heavy}, rnd)[0] == heavy {
			first++
		}
	}
	assert.InDelta(t, 2000*9/11, first, 80)
}
