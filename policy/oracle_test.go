package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/certs"
)

func settings(p Policy) Settings { return Settings{Policy: p, Cert: certs.Valid, Strict: true} }

// With valid certificates, the union of the methods the oracle predicts
// for a row against every partner, in both directions, is the row's
// documented set: the rules reproduce the full matrix.
func TestOracleReproducesFullMatrix(t *testing.T) {
	for _, row := range Full.Rows {
		var got []Method
		for _, partner := range All() {
			for _, pr := range []Prediction{Predict(settings(row.Policy), settings(partner)), Predict(settings(partner), settings(row.Policy))} {
				if m, ok := pr.Method(); ok {
					got = append(got, m)
				}
			}
		}
		assert.True(t, row.Methods.Equal(NewMethodSet(got...)), "%s: documented %s, predicted %s", row.ID, row.Methods, NewMethodSet(got...))
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
		name, in, re                 string
		outcome, step, condition, by string
	}{
		{"TLS required vs none", "tls=Required", "tls=NotSupported", "failed", "starttls", "policy-violation", "initiator"},
		{"none vs TLS required", "tls=NotSupported", "tls=Required", "failed", "starttls", "unsupported-feature", "initiator"},
		{"strict receiver, expired initiator", "cert=expired", "", "failed", "tls-handshake", "bad-certificate", "receiver"},
		{"strict initiator, self-signed receiver", "", "cert=self-signed", "failed", "tls-handshake", "bad-certificate", "initiator"},
		{"lenient receiver rescues with dialback", "cert=no-client-auth", "strict=false", "tls-dialback", "", "", ""},
		{"no clientAuth, no dialback", "cert=no-client-auth,dialback=false", "strict=false", "failed", "sasl", "not-authorized", "receiver"},
		{"M1 against a dialback-only partner", "tls=Required,sasl=Required,dialback=true", "tls=Required,sasl=NotSupported,dialback=true", "failed", "dialback", "policy-violation", "initiator"},
		{"strict authoritative rejects the verifier", "sasl=NotSupported", "sasl=NotSupported,strict=false,cert=no-client-auth", "failed", "dialback-verify", "bad-certificate", "authoritative"},
		{"verify connection rejected", "cert=expired,sasl=NotSupported", "strict=true,sasl=NotSupported,cert=valid", "failed", "tls-handshake", "bad-certificate", "receiver"},
		{"missing certificate: plain dialback", "", "cert=missing", "tcp-dialback", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Predict(spec(tc.in), spec(tc.re))
			assert.Equal(t, tc.outcome, p.Outcome, p.Reasons)
			assert.Equal(t, tc.step, p.Step, p.Reasons)
			assert.Equal(t, tc.condition, p.Condition, p.Reasons)
			assert.Equal(t, tc.by, p.By, p.Reasons)
			assert.NotEmpty(t, p.Reasons)
		})
	}
}
