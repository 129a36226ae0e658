package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
)

func settings(p Policy) Settings { return Settings{Policy: p, Cert: certs.Valid, Strict: true} }

// With valid certificates, the union of the methods the oracle predicts
// for a row against every partner, in both directions, is the row's
// documented set: the rules reproduce the full matrix.
func TestOracleReproducesFullMatrix(t *testing.T) {
	for _, row := range Full.Rows {
		var got []outcome.Method
		for _, partner := range All() {
			for _, pr := range []Prediction{Predict(settings(row.Policy), settings(partner)), Predict(settings(partner), settings(row.Policy))} {
				if pr.Outcome.OK() {
					got = append(got, pr.Outcome.Method)
				}
			}
		}
		assert.True(t, row.Methods.Equal(outcome.NewMethodSet(got...)), "%s: documented %s, predicted %s", row.ID, row.Methods, outcome.NewMethodSet(got...))
	}
}

func TestOracleFailures(t *testing.T) {
	spec := func(s string) Settings {
		v, err := ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, in, re string
		want         string // the outcome's short form
	}{
		{"TLS required vs none", "tls=Required", "tls=NotSupported", "failed at starttls (policy-violation by initiator)"},
		{"none vs TLS required", "tls=NotSupported", "tls=Required", "failed at starttls (unsupported-feature by initiator)"},
		{"strict receiver, expired initiator", "cert=expired", "", "failed at tls-handshake (bad-certificate by receiver)"},
		{"strict initiator, self-signed receiver", "", "cert=self-signed", "failed at tls-handshake (bad-certificate by initiator)"},
		{"lenient receiver rescues with dialback", "cert=no-client-auth", "strict=false", "tls-dialback"},
		{"no clientAuth, no dialback", "cert=no-client-auth,dialback=false", "strict=false", "failed at sasl (not-authorized by receiver)"},
		{"M1 against a dialback-only partner", "tls=Required,sasl=Required,dialback=true", "tls=Required,sasl=NotSupported,dialback=true", "failed at dialback (policy-violation by initiator)"},
		{"strict authoritative rejects the verifier", "sasl=NotSupported", "sasl=NotSupported,strict=false,cert=no-client-auth", "failed at dialback-verify (bad-certificate by authoritative)"},
		{"verify connection rejected", "cert=expired,sasl=NotSupported", "strict=true,sasl=NotSupported,cert=valid", "failed at tls-handshake (bad-certificate by receiver)"},
		{"missing certificate: plain dialback", "", "cert=missing", "tcp-dialback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Predict(spec(tc.in), spec(tc.re))
			assert.Equal(t, tc.want, p.Outcome.String(), p.Reasons)
			assert.NotEmpty(t, p.Reasons)
		})
	}
}
