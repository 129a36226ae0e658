package sim

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// What the 2026 servers add to their features is read back as written:
// XEP-0288's <bidi/> in either namespace, XEP-0478's limits, XEP-0440's
// channel-binding types; a limit that is not a number is not taken as
// one.
func TestFeaturesBidiAndLimits(t *testing.T) {
	readElementString := func(x string) (*element, error) {
		d := xml.NewDecoder(strings.NewReader(headerXML("a.test", "b.test", "id1") + x))
		if _, err := readHeader(d); err != nil {
			return nil, err
		}
		return readElement(d, DefaultLimits)
	}
	for _, f := range []features{
		{StartTLS: true, TLSRequired: true, Dialback: true, Limits: &streamLimits{MaxBytes: 524288, IdleSeconds: 840}},
		{Mechanisms: []string{"EXTERNAL"}, ChannelBindings: []string{"tls-exporter", "tls-server-end-point", "tls-unique"}, Bidi: nsBidiFeat},
		{Dialback: true, Bidi: nsBidi},
	} {
		el, err := readElementString(f.xml())
		require.NoError(t, err, f.xml())
		got := parseFeatures(el)
		got.DialbackErrors = f.DialbackErrors
		assert.Equal(t, f, got, f.xml())
	}
	el, err := readElementString("<stream:features><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>lots</max-bytes></limits></stream:features>")
	require.NoError(t, err)
	assert.Equal(t, &streamLimits{}, parseFeatures(el).Limits)
	assert.Equal(t, "dialback, bidi (XEP-0288, in urn:xmpp:bidi)", features{Dialback: true, Bidi: nsBidi}.String())
}

// An initiator never sends a stanza larger than the max-bytes the
// receiver advertised: it fails saying so, its own finding.
func TestMaxBytesIsRespected(t *testing.T) {
	w := newWorld(t)
	a := w.endpoint("a.test", "tls=Optional")
	b := w.endpoint("b.test", "tls=Optional,stream_limits=true")
	r := negotiate(t, a, b)
	assert.True(t, r.Outcome.OK(), r.Explain())
	assert.Contains(t, r.TranscriptText(), "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>524288</max-bytes>")

	saved := prosodyLimits
	defer func() { prosodyLimits = saved }()
	prosodyLimits.MaxBytes = 40
	c := w.endpoint("c.test", "tls=Optional,stream_limits=true")
	r = negotiate(t, a, c)
	require.NotNil(t, r.Outcome.Failure, r.Explain())
	assert.Equal(t, outcome.PolicyViolation, r.Outcome.Failure.Condition, r.Explain())
	assert.Equal(t, outcome.Initiator, r.Outcome.Failure.By)
	assert.Contains(t, r.Explain(), "more than the 40 of max-bytes")
	// The initiator ends its stream, so the receiver answers the close
	// instead of waiting out its deadline for a stanza.
	assert.Contains(t, r.TranscriptText(), "TLS initiator a.test → receiver c.test\n    </stream:stream>", r.TranscriptText())
	assert.NotContains(t, r.Explain(), "no answer", r.Explain())
}

// XEP-0288 between two ends that answer over streams of their own: once
// agreed, the answer to the ping comes back over the same stream; in
// different namespaces they never agree, and it comes over the
// receiver's own stream, as the oracle says.
func TestBidiAnswersOverTheSameStream(t *testing.T) {
	for _, tc := range []struct {
		init, recv string
		same       bool
	}{
		{"bidi=true", "bidi=true", true},
		{"bidi=wrong-namespace", "bidi=wrong-namespace", true},
		{"bidi=true", "bidi=wrong-namespace", false},
		{"bidi=wrong-namespace", "bidi=true", false},
		{"bidi=false", "bidi=true", false},
	} {
		t.Run(tc.init+"/"+tc.recv, func(t *testing.T) {
			w := newWorld(t)
			a := w.endpoint("a.test", "tls=Optional,answer_pings=own-stream,"+tc.init)
			b := w.endpoint("b.test", "tls=Optional,answer_pings=own-stream,"+tc.recv)
			r := negotiate(t, a, b)
			require.True(t, r.Outcome.OK(), r.Explain())
			pred := policy.Predict(a.Settings(), b.Settings())
			assert.Equal(t, tc.same, policy.BidiAgreed(a.Settings(), b.Settings(), true))
			assert.Equal(t, tc.same, strings.Contains(strings.Join(pred.Reasons, "\n"), "bidirectional"), pred.Reasons)
			var answeredOnMain bool
			for _, e := range r.Transcript {
				if e.Conn == "main" && strings.Contains(e.XML, "type='result'") && strings.Contains(e.XML, "xmppneg-ping-") {
					answeredOnMain = true
				}
			}
			assert.Equal(t, tc.same, answeredOnMain, r.TranscriptText())
		})
	}
}
