package scenarios

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/sim/realserver"
)

// The federation suite covers every two kinds the launcher knows, each
// in its default and field settings: at least 10 pairs of settings for
// two kinds, both directions of each, every server started once.
func TestPlanFederationCoversEveryTwoKinds(t *testing.T) {
	plan, err := PlanFederation(realserver.Kinds())
	require.NoError(t, err)
	perSweep := map[string]int{}
	for _, p := range plan.Pairs {
		perSweep[p.Sweep]++
	}
	kinds := realserver.Kinds()
	assert.Len(t, plan.Sweeps, len(kinds)*(len(kinds)+1)/2, "one sweep per two kinds, and per kind with itself")
	for _, sw := range plan.Sweeps {
		assert.True(t, sw.Federation)
		if sw.RowServer != sw.PartnerServer {
			assert.GreaterOrEqual(t, perSweep[sw.Name], 10, sw.Name)
		} else {
			assert.GreaterOrEqual(t, perSweep[sw.Name], 4, sw.Name)
		}
	}
	domains := map[string]bool{}
	for _, s := range plan.Servers {
		assert.False(t, domains[s.Domain], "%s started twice", s.Domain)
		domains[s.Domain] = true
	}
	seen := map[string]bool{}
	for _, p := range plan.Pairs {
		assert.True(t, domains[p.A] && domains[p.B], "%v", p)
		assert.NotEqual(t, p.A, p.B)
		key := p.A + " " + p.B
		assert.False(t, seen[key], "%s planned twice", key)
		seen[key] = true
		_, unstable := unstableFederations[key]
		assert.False(t, unstable, "%s is unstable and left out", key)
	}
	left := strings.Join(plan.Skipped, "\n")
	for key := range unstableFederations {
		a, b, _ := strings.Cut(key, " ")
		if domains[a] && domains[b] {
			assert.Contains(t, left, a+" meeting "+b, "an unstable pair left out says so")
		}
	}
}
