package rollout

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClassify(t *testing.T) {
	sasl, tlsdb, tcpdb := outcome.Succeeded(outcome.SASLOverTLS), outcome.Succeeded(outcome.TLSDialback), outcome.Succeeded(outcome.TCPDialback)
	failA := outcome.Outcome{Failure: &outcome.Failure{Step: outcome.StepSASL, Condition: outcome.NotAuthorized, By: outcome.Receiver}}
	failB := outcome.Outcome{Failure: &outcome.Failure{Step: outcome.StepStartTLS, Condition: outcome.NotAuthorized, By: outcome.Receiver}}
	for _, tc := range []struct {
		before, after outcome.Outcome
		want          Kind
	}{
		{sasl, sasl, Unchanged},
		{sasl, tlsdb, Regression},
		{tlsdb, tcpdb, Regression},
		{tcpdb, failA, Regression},
		{failA, tcpdb, Improvement},
		{tlsdb, sasl, Improvement},
		{failA, failB, Changed},
		{failA, failA, Unchanged},
		{sasl, absent, Regression},
	} {
		assert.Equal(t, tc.want, Classify(tc.before, tc.after), "%s → %s", tc.before, tc.after)
	}
}

// A subject that gains dialback: the dialback-only partner now
// authenticates; the others do not change.
func TestCompare(t *testing.T) {
	noDB, _ := policy.ParseSpec("dialback=false")
	db, _ := policy.ParseSpec("dialback=true")
	gtalk, _ := policy.LookupProfile("gtalk-legacy")
	xmppneg, _ := policy.LookupProfile("xmppneg")
	rep, err := Compare(context.Background(), []Subject{{Name: "ours.test", Before: Fixed("no dialback", noDB), After: Fixed("dialback", db),
		Partners: []Partner{{Name: "gtalk", Domain: "gtalk.test", Settings: gtalk.Settings}, {Name: "xmppneg", Domain: "x.test", Settings: xmppneg.Settings}}}}, Options{Jobs: 2})
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Summary.Negotiations)
	assert.Equal(t, 0, rep.Summary.Regressions)
	assert.Equal(t, 2, rep.Summary.Improvements, "gtalk both ways")
	for _, r := range rep.Results {
		if r.Partner == "gtalk" {
			assert.Equal(t, Improvement, r.Kind)
			assert.Equal(t, outcome.TCPDialback, r.After.Method)
		} else {
			assert.Equal(t, Unchanged, r.Kind)
		}
	}
}
