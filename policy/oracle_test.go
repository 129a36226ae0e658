package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
)

func settings(p Policy) Settings { s := DefaultSettings(); s.Policy, s.Cert = p, certs.Valid; return s }

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
		{"no clientAuth is a good client certificate", "cert=no-client-auth", "", "sasl-over-tls"},
		{"lenient receiver rescues with dialback", "cert=client-auth-only", "strict=false", "tls-dialback"},
		{"clientAuth only, no dialback", "cert=client-auth-only,dialback=false", "strict=false", "failed at sasl (not-authorized by receiver)"},
		{"ejabberd refuses serverAuth only, dialback rescues", "cert=no-client-auth", "profile=ejabberd-23-example", "tls-dialback"},
		{"ejabberd refuses serverAuth only, no dialback", "cert=no-client-auth,dialback=false", "profile=ejabberd-23-example", "failed at sasl (not-authorized by receiver)"},
		{"Prosody offers no EXTERNAL to a bad certificate and has nothing else", "cert=expired,strict=false", "profile=prosody-0.12,dialback=false", "failed at stream (undefined-condition by receiver)"},
		{"Prosody secure_auth refuses a missing certificate after TLS", "cert=missing", "profile=prosody-0.12-secure", "failed at stream (not-authorized by receiver)"},
		{"Prosody sends starttls unoffered", "profile=prosody-0.12", "cert=missing", "failed at starttls (failure by receiver)"},
		{"Prosody cannot verify without TLS and says nothing", "cert=missing,sasl=NotSupported", "profile=prosody-0.12", "failed at timeout during dialback (connection-timeout by initiator)"},
		{"ejabberd gives up at the stream step", "profile=ejabberd-23", "tls=Required", "failed at stream (unsupported-feature by initiator)"},
		{"ejabberd without dialback hangs up on a bad server certificate", "profile=ejabberd-23-example,dialback=false,refuse_server=close", "cert=expired,strict=false", "failed at stream (connection-closed by initiator)"},
		{"jabberd2 drops a plain db:result", "tls=NotSupported", "profile=jabberd2-2.7,tls=Required,plain_dialback=drop", "failed at timeout during dialback (connection-timeout by initiator)"},
		{"jabberd2 without a certificate opens pre-1.0 streams", "profile=jabberd2-2.7,cert=missing,tls=NotSupported,legacy_streams=true", "", "tcp-dialback"},
		{"M1 against a dialback-only partner", "tls=Required,sasl=Required,dialback=true", "tls=Required,sasl=NotSupported,dialback=true", "failed at dialback (policy-violation by initiator)"},
		{"strict authoritative rejects the verifier", "sasl=NotSupported,eku=client", "sasl=NotSupported,strict=false,cert=no-client-auth", "failed at dialback-verify (bad-certificate by authoritative)"},
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
