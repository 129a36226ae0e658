package partners

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
)

// manyPartners is a list of n partners nobody declared, in the four
// settings a gateway's list mostly holds.
func manyPartners(n int) []lyncpartner.Entry {
	pols := []policy.Policy{{TLS: policy.Required, SASL: policy.Required, Dialback: true}, {TLS: policy.Optional, SASL: policy.NotSupported, Dialback: true},
		{TLS: policy.Required, SASL: policy.NotSupported, Dialback: true}, {TLS: policy.Optional, SASL: policy.Optional, Dialback: false}}
	out := make([]lyncpartner.Entry, n)
	for i := range out {
		out[i] = lyncpartner.Default(fmt.Sprintf("p%d.example.com", i))
		out[i].Policy = pols[i%len(pols)]
		out[i].Source = fmt.Sprintf("p:%d", i+1)
	}
	return out
}

func evaluateMany(tb testing.TB, entries []lyncpartner.Entry) *Report {
	base, err := policy.LookupProfile("lync2013-gateway")
	require.NoError(tb, err)
	gw := base.Settings
	rep, err2 := Evaluate(context.Background(), entries, nil, Options{Gateway: &gw, GatewayDomain: "contoso.test", Jobs: 8})
	require.NoError(tb, err2)
	return rep
}

// A large gateway's list takes seconds: what a partner costs beyond the
// negotiations (run once for all) is its own verdict, not a copy of
// every candidate's results. Each partner allocated 54 KB when it kept
// its own (and printed every key of the negotiations it looked up).
func TestManyPartnersCostLittleEach(t *testing.T) {
	entries := manyPartners(2000)
	alloc := func(n int) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rep := evaluateMany(t, entries[:n])
		runtime.ReadMemStats(&after)
		require.Len(t, rep.Partners, n)
		return after.TotalAlloc - before.TotalAlloc
	}
	alloc(8) // the certificates, made once a process
	small, large := alloc(500), alloc(2000)
	perPartner := (int64(large) - int64(small)) / 1500
	t.Logf("%d bytes allocated a partner", perPartner)
	require.Less(t, perPartner, int64(6<<10), "bytes allocated a partner, the negotiations apart")
}

// BenchmarkManyPartners is the time a partner of a large list takes
// without --probe (the negotiations are run once and shared): 50,000
// partners must take seconds.
func BenchmarkManyPartners(b *testing.B) {
	entries := manyPartners(10000)
	evaluateMany(b, entries[:8])
	b.ResetTimer()
	for b.Loop() {
		evaluateMany(b, entries)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(entries)), "ns/partner")
}
