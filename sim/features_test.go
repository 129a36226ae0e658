package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/policy/outcome"
)

// Every feature of the table says all that the roles ask of it, so that
// a new one that leaves something out fails here rather than with a nil
// function in the middle of a negotiation; the authentication methods
// ask with elements of their own, and each fails at a step of its own.
func TestStreamFeaturesAreComplete(t *testing.T) {
	requests, steps := map[string]bool{}, map[outcome.Step]bool{}
	methods := 0
	for i, sf := range streamFeatures {
		assert.NotEmpty(t, sf.names, "feature %d: names", i)
		assert.NotNil(t, sf.offer, "feature %d (%v): offer", i, sf.names)
		assert.NotNil(t, sf.list, "feature %d (%v): list", i, sf.names)
		assert.NotNil(t, sf.parse, "feature %d (%v): parse", i, sf.names)
		assert.NotNil(t, sf.describe, "feature %d (%v): describe", i, sf.names)
		a := sf.auth
		if a == nil {
			continue
		}
		methods++
		assert.NotNil(t, sf.offered, "%v: an authentication method is offered or not", sf.names)
		assert.NotZero(t, a.step, "%v: step", sf.names)
		assert.NotNil(t, a.choose, "%v: choose", sf.names)
		assert.NotNil(t, a.negotiate, "%v: negotiate", sf.names)
		assert.NotNil(t, a.serve, "%v: serve", sf.names)
		assert.False(t, requests[a.request.Space+" "+a.request.Local], "%v: request %v is another method's", sf.names, a.request)
		assert.False(t, steps[a.step], "%v: step %s is another method's", sf.names, a.step)
		requests[a.request.Space+" "+a.request.Local], steps[a.step] = true, true
		assert.Same(t, a, requestedMethod(&element{Name: a.request}), "%v: the receiver finds it by its request", sf.names)
	}
	assert.NotZero(t, methods, "authentication methods in streamFeatures")
}

// With nothing offered, an initiator that can use no method fails at
// the last method's step; otherwise at the first one offered.
func TestFailStepIsTheFirstMethodOffered(t *testing.T) {
	assert.Equal(t, outcome.StepDialback, failStep(features{}))
	assert.Equal(t, outcome.StepDialback, failStep(features{Dialback: true, Mechanisms: []string{"PLAIN"}}))
	assert.Equal(t, outcome.StepSASL, failStep(features{Dialback: true, Mechanisms: []string{"EXTERNAL"}}))
	assert.Equal(t, "none", features{Mechanisms: []string{}}.String())
	assert.Equal(t, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></mechanisms></stream:features>", features{Mechanisms: []string{}}.xml())
	assert.Equal(t, "<stream:features/>", features{TLSRequired: true, DialbackErrors: true}.xml())
}
