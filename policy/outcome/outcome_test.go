package outcome

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	observed := Failed(Failure{Step: StepStartTLS, Condition: UnsupportedFeature, By: Initiator, Message: "no TLS"})
	timeout := Failed(Failure{Step: StepTimeout, Condition: ConnectionTimeout, By: Receiver, During: StepDialbackVerify})
	for _, tc := range []struct {
		name     string
		got      Outcome
		want     Outcome
		expected bool
	}{
		{"same method", Succeeded(TLSDialback), Succeeded(TLSDialback), true},
		{"other method", Succeeded(TLSDialback), Succeeded(TCPDialback), false},
		{"method expected, failed", observed, Succeeded(SASLOverTLS), false},
		{"failure expected, method", Succeeded(SASLOverTLS), AnyFailure(), false},
		{"any failure", observed, AnyFailure(), true},
		{"step only", observed, Failed(Failure{Step: StepStartTLS}), true},
		{"wrong step", observed, Failed(Failure{Step: StepSASL}), false},
		{"condition only", observed, Failed(Failure{Condition: UnsupportedFeature}), true},
		{"wrong condition", observed, Failed(Failure{Condition: PolicyViolation}), false},
		{"side only", observed, Failed(Failure{By: Initiator}), true},
		{"wrong side", observed, Failed(Failure{By: Receiver}), false},
		{"all three", observed, Failed(Failure{Step: StepStartTLS, Condition: UnsupportedFeature, By: Initiator}), true},
		{"message is not compared", observed, Failed(Failure{Step: StepStartTLS, Message: "other words"}), true},
		{"during", timeout, Failed(Failure{Step: StepTimeout, During: StepDialbackVerify}), true},
		{"wrong during", timeout, Failed(Failure{Step: StepTimeout, During: StepSASL}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.expected, tc.got.Match(tc.want))
		})
	}
}

func TestStripKeepsWhatMatchCompares(t *testing.T) {
	o := Failed(Failure{Step: StepSASL, Condition: NotAuthorized, By: Receiver, Message: "x", Conn: "main", Elapsed: 7})
	assert.True(t, o.Match(o.Strip()))
	assert.True(t, o.Strip().Match(o))
	assert.Equal(t, "", o.Strip().Failure.Message)
	assert.Equal(t, Succeeded(TCPDialback), Succeeded(TCPDialback).Strip())
}

func TestSame(t *testing.T) {
	a := Failed(Failure{Step: StepSASL, Condition: NotAuthorized, By: Receiver, Message: "one"})
	b := Failed(Failure{Step: StepSASL, Condition: NotAuthorized, By: Receiver, Message: "two", Elapsed: 3})
	assert.True(t, a.Same(b))
	assert.False(t, a.Same(Failed(Failure{Step: StepSASL, Condition: NotAuthorized, By: Initiator})))
	assert.False(t, a.Same(Succeeded(SASLOverTLS)))
	assert.True(t, Succeeded(TCPDialback).Same(Succeeded(TCPDialback)))
	assert.False(t, Succeeded(TCPDialback).Same(Succeeded(TLSDialback)))
}

func TestStrings(t *testing.T) {
	assert.Equal(t, "failed at starttls (unsupported-feature by initiator)",
		Failed(Failure{Step: StepStartTLS, Condition: UnsupportedFeature, By: Initiator}).String())
	assert.Equal(t, "failed at dialback (by receiver)", Failed(Failure{Step: StepDialback, By: Receiver}).String())
	assert.Equal(t, "failed at timeout during sasl (connection-timeout by initiator)",
		Failed(Failure{Step: StepTimeout, During: StepSASL, Condition: ConnectionTimeout, By: Initiator}).String())
	assert.Equal(t, "failed", AnyFailure().String())
	assert.Equal(t, "tcp-dialback", Succeeded(TCPDialback).String())
	assert.Equal(t, "authenticated with SASL over TLS", Succeeded(SASLOverTLS).Explain())
	assert.Equal(t, "sasl failed (not-authorized, raised by receiver): refused",
		Failed(Failure{Step: StepSASL, Condition: NotAuthorized, By: Receiver, Message: "refused"}).Explain())
}

func TestJSONRoundTrip(t *testing.T) {
	for _, o := range []Outcome{
		Succeeded(SASLOverTLS),
		Failed(Failure{Step: StepTimeout, During: StepDialback, Condition: ConnectionTimeout, By: Receiver, Message: "m", Conn: "main", Elapsed: 12}),
		Failed(Failure{Step: StepDialback}),
	} {
		b, err := json.Marshal(o)
		require.NoError(t, err)
		var back Outcome
		require.NoError(t, json.Unmarshal(b, &back), string(b))
		assert.Equal(t, o, back, string(b))
	}
	b, _ := json.Marshal(Failed(Failure{Step: StepSASL, Condition: NotAuthorized, By: Receiver}))
	assert.JSONEq(t, `{"outcome":"failed","failure":{"step":"sasl","condition":"not-authorized","by":"receiver"},"text":"failed at sasl (not-authorized by receiver)"}`, string(b))
	b, _ = json.Marshal(Succeeded(TLSDialback))
	assert.JSONEq(t, `{"outcome":"tls-dialback","text":"tls-dialback"}`, string(b))
	b, _ = json.Marshal(MethodSet(nil))
	assert.Equal(t, "[]", string(b))
}

func TestParse(t *testing.T) {
	for _, s := range []string{"tls-dialback", "TLS Dialback", "tls_dialback", " TLSDIALBACK "} {
		m, err := ParseMethod(s)
		require.NoError(t, err, s)
		assert.Equal(t, TLSDialback, m)
	}
	_, err := ParseMethod("carrier-pigeon")
	assert.EqualError(t, err, `invalid method "carrier-pigeon": accepted values are sasl-over-tls, tls-dialback, tcp-dialback`)
	_, err = ParseStep("lunch")
	assert.EqualError(t, err, `invalid step "lunch": accepted values are tcp, stream, starttls, tls-handshake, sasl, dialback, dialback-verify, timeout`)
	_, err = ParseSide("bystander")
	assert.EqualError(t, err, `invalid side "bystander": accepted values are initiator, receiver, authoritative`)
	c, err := ParseCondition("remote-server-not-found")
	require.NoError(t, err)
	assert.Equal(t, RemoteServerNotFound, c)
	_, err = ParseCondition("bad-weather")
	assert.ErrorContains(t, err, `invalid condition "bad-weather": accepted values are aborted, account-disabled,`)
}

// Every enum value has a name, so that adding one without its name is
// caught here.
func TestEveryValueIsNamed(t *testing.T) {
	for _, m := range Methods {
		assert.NotEqual(t, "", methodInfo[m].id, m)
		assert.NotEqual(t, "", methodInfo[m].name, m)
	}
	assert.Len(t, methodInfo, len(Methods)+1)
	assert.Len(t, stepIDs, len(Steps)+1)
	assert.Len(t, sideIDs, len(Sides)+1)
	for _, s := range Steps {
		back, err := ParseStep(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, back)
	}
}

func TestMethodSet(t *testing.T) {
	s := NewMethodSet(TCPDialback, SASLOverTLS, TCPDialback)
	assert.Equal(t, MethodSet{SASLOverTLS, TCPDialback}, s)
	assert.True(t, s.Equal(MethodSet{TCPDialback, SASLOverTLS}))
	assert.Equal(t, MethodSet{TCPDialback}, s.Minus(MethodSet{SASLOverTLS}))
	assert.Equal(t, "SASL over TLS, TCP Dialback", s.Names())
	assert.Equal(t, "none", MethodSet{}.String())
}
