package partners

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/outcome"
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

// A large gateway's list takes seconds: what an unknown partner costs
// beyond the negotiations (run once for all) is its own verdict, the
// candidates' results being shared by the partners with the same entry
// settings. Each partner allocated tens of KB when it printed every
// negotiation key it looked up and kept 25 candidate results of its
// own. The negotiations are taken as run, so that the race detector
// (make test) has no thousands of them to watch.
func TestManyPartnersCostLittleEach(t *testing.T) {
	base, err := policy.LookupProfile("lync2013-gateway")
	require.NoError(t, err)
	gw := base.Settings
	ev := newEvaluator(Options{Gateway: &gw, GatewayDomain: "contoso.test"})
	entry := lyncpartner.Default("p.example.com")
	g := ev.gateway(entry.Policy)
	for _, c := range ev.candidateSet() {
		for _, dir := range Directions {
			ev.memo[ev.memoKey(ev.key("", g, c.Settings, dir))] = outcomeRun{out: outcome.Succeeded(outcome.SASLOverTLS), explain: "as run"}
		}
	}
	judge := func(n int) ([]*Partner, uint64) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ps := make([]*Partner, n)
		for i := range ps {
			ps[i] = &Partner{Entry: lyncpartner.Default(fmt.Sprintf("p%d.example.com", i))}
			ev.judgeUnknown(ps[i])
		}
		runtime.ReadMemStats(&after)
		return ps, after.TotalAlloc - before.TotalAlloc
	}
	ps, small := judge(500)
	require.Len(t, ps[0].Candidates, len(Candidates()))
	assert.Same(t, ps[0].Candidates[0], ps[1].Candidates[0], "partners with the same settings share their candidates' results")
	assert.Equal(t, len(Candidates()), ps[1].CandidatesBothWays)
	_, large := judge(2500)
	perPartner := (int64(large) - int64(small)) / 2000
	t.Logf("%d bytes allocated a partner", perPartner)
	assert.Less(t, perPartner, int64(2<<10), "bytes allocated a partner, the negotiations apart")
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
