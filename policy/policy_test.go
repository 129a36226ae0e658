package policy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
)

// The full matrix as the Korean original lays it out, one line a row:
// TLS, SASL, dialback, expected methods (- for an invalid configuration),
// warning codes and error codes.
var documented = []struct {
	tls, sasl, db, methods string
	warnings, errors       []string
}{
	{"필수", "필수", "True", "SASL over TLS", []string{CodeDialbackDisabled}, nil},
	{"필수", "필수", "False", "SASL over TLS", nil, nil},
	{"선택", "필수", "True", "SASL over TLS, TLS Dialback, TCP Dialback", []string{CodeSASLNeedsTLS}, nil},
	{"선택", "필수", "False", "SASL over TLS", []string{CodeSASLNeedsTLS}, nil},
	{"지원 안 됨", "필수", "True", "TCP Dialback", []string{CodeSASLNeedsTLS}, nil},
	{"지원 안 됨", "필수", "False", "-", nil, []string{CodeInvalidConfiguration, CodeSASLTLSUnavailable}},
	{"필수", "선택", "True", "SASL over TLS, TLS Dialback", nil, nil},
	{"필수", "선택", "False", "SASL over TLS", nil, nil},
	{"선택", "선택", "True", "SASL over TLS, TLS Dialback, TCP Dialback", []string{CodeSASLNeedsTLS}, nil},
	{"선택", "선택", "False", "SASL over TLS", []string{CodeSASLNeedsTLS}, nil},
	{"지원 안 됨", "선택", "True", "TCP Dialback", []string{CodeSASLNeedsTLS}, nil},
	{"지원 안 됨", "선택", "False", "-", []string{CodeSASLNeedsTLS}, []string{CodeInvalidConfiguration}},
	{"필수", "지원 안 됨", "True", "TLS Dialback", nil, nil},
	{"필수", "지원 안 됨", "False", "-", nil, []string{CodeInvalidConfiguration, CodeSASLOrDialback}},
	{"선택", "지원 안 됨", "True", "TLS Dialback, TCP Dialback", nil, nil},
	{"선택", "지원 안 됨", "False", "-", nil, []string{CodeInvalidConfiguration, CodeSASLOrDialback}},
	{"지원 안 됨", "지원 안 됨", "True", "TCP Dialback", nil, nil},
	{"지원 안 됨", "지원 안 됨", "False", "-", nil, []string{CodeInvalidConfiguration, CodeSASLOrDialback}},
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

func parseMethods(t *testing.T, s string) outcome.MethodSet {
	t.Helper()
	if s == "-" {
		return outcome.MethodSet{}
	}
	var ms []outcome.Method
	for _, name := range splitComma(s) {
		m, err := outcome.ParseMethod(name)
		require.NoError(t, err)
		ms = append(ms, m)
	}
	return outcome.NewMethodSet(ms...)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func TestValidateFullMatrix(t *testing.T) {
	require.Len(t, documented, 18)
	all := All()
	require.Len(t, all, 18)
	for i, d := range documented {
		p := Policy{}
		var err error
		p.TLS, err = ParseLevel(d.tls)
		require.NoError(t, err)
		p.SASL, err = ParseLevel(d.sasl)
		require.NoError(t, err)
		p.Dialback, err = ParseBool(d.db)
		require.NoError(t, err)
		t.Run(p.Short(), func(t *testing.T) {
			assert.Equal(t, p, all[i], "All() must follow the document's order")
			v, err := Validate(p)
			require.NoError(t, err)
			assert.Equal(t, Full.Rows[i].ID, v.Row)
			want := parseMethods(t, d.methods)
			assert.Equal(t, len(want) > 0, v.Valid, "valid flag")
			assert.True(t, want.Equal(v.Methods), "methods: want %s, got %s", want, v.Methods)
			assert.Equal(t, d.warnings, codes(v.Warnings), "warnings")
			assert.Equal(t, d.errors, codes(v.Errors), "errors")
			for _, f := range append(v.Warnings, v.Errors...) {
				assert.NotEmpty(t, f.Message)
				assert.NotEmpty(t, f.Korean)
			}
		})
	}
}

func TestFullMatrixRowIDsAreSequential(t *testing.T) {
	seen := map[Policy]bool{}
	for i, r := range Full.Rows {
		assert.Equal(t, "M"+itoa(i+1), r.ID)
		assert.False(t, seen[r.Policy], "%s repeats settings", r.ID)
		seen[r.Policy] = true
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestInconsistencyC2M7(t *testing.T) {
	incs := Inconsistencies()
	require.Len(t, incs, 1, "the published document has exactly one contradiction")
	inc := incs[0]
	assert.Equal(t, "tables-disagree", inc.Code)
	assert.Equal(t, []string{"C2", "M7"}, inc.Rows)
	assert.Equal(t, outcome.MethodSet{outcome.TCPDialback}, inc.Extra)
	assert.Empty(t, inc.Missing)
	assert.Contains(t, inc.Message, "TLS Required")
}

func TestInconsistenciesFindsEditedTable(t *testing.T) {
	// Repair C2, break C4: the check must follow the data, not the row names.
	common := Table{Rows: append([]Row{}, Common.Rows...)}
	common.Rows[1].Methods = outcome.MethodSet{outcome.SASLOverTLS, outcome.TLSDialback}
	common.Rows[3].Methods = outcome.MethodSet{outcome.TLSDialback}
	incs := inconsistencies(common, Full)
	require.Len(t, incs, 1)
	assert.Equal(t, []string{"C4", "M17"}, incs[0].Rows)
	assert.Equal(t, outcome.MethodSet{outcome.TCPDialback}, incs[0].Missing)
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{
		"Required": Required, "required": Required, " REQUIRED ": Required, "필수": Required,
		"Optional": Optional, "optional": Optional, "선택": Optional,
		"NotSupported": NotSupported, "notsupported": NotSupported, "Not supported": NotSupported,
		"not_supported": NotSupported, "not-supported": NotSupported, "지원 안 됨": NotSupported,
	} {
		got, err := ParseLevel(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, bad := range []string{"", "yes", "require", "Requiredd", "true"} {
		_, err := ParseLevel(bad)
		if assert.Error(t, err, bad) {
			assert.Contains(t, err.Error(), `"`+bad+`"`)
			assert.Contains(t, err.Error(), "NotSupported")
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, "True": true, "$true": true, "$TRUE": true,
		"false": false, "False": false, "$false": false} {
		got, err := ParseBool(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, bad := range []string{"", "1", "yes", "$maybe"} {
		_, err := ParseBool(bad)
		if assert.Error(t, err, bad) {
			assert.Contains(t, err.Error(), "$true")
		}
	}
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec("tls=Required, sasl=not supported,dialback=$false,cert=expired,strict=false,secret=s3")
	require.NoError(t, err)
	assert.Equal(t, Settings{Policy: Policy{TLS: Required, SASL: NotSupported}, Cert: certs.Expired, Secret: "s3",
		Behaviour: Behaviour{Refuse: RefuseAtSASL, RefuseServer: ServerRefusalNone}}, s, "strict=false")

	s, err = ParseSpec("")
	require.NoError(t, err)
	assert.Equal(t, DefaultSettings(), s)

	for spec, inErr := range map[string]string{
		"tls=Maybe":                 `tls: invalid level "Maybe"`,
		"color=red":                 `unknown key "color"`,
		"tls":                       `"tls" is not key=value`,
		"cert=rotten":               `cert: invalid certificate state "rotten"`,
		"tls=Optional,tls=Required": `key "tls" given twice`,
	} {
		_, err := ParseSpec(spec)
		if assert.Error(t, err, spec) {
			assert.Contains(t, err.Error(), inErr)
		}
	}
}

func TestSettingsStringRoundTrip(t *testing.T) {
	for _, p := range All() {
		s := Settings{Policy: p, Cert: certs.WrongName}
		back, err := ParseSpec(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, back)
	}
}

func TestLevelJSON(t *testing.T) {
	b, err := json.Marshal(Policy{TLS: NotSupported, SASL: Optional, Dialback: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"tls":"NotSupported","sasl":"Optional","dialback":true}`, string(b))
	var p Policy
	require.NoError(t, json.Unmarshal([]byte(`{"tls":"필수","sasl":"not supported"}`), &p))
	assert.Equal(t, Policy{TLS: Required, SASL: NotSupported}, p)
	assert.Error(t, json.Unmarshal([]byte(`{"tls":"sometimes"}`), &p))
}
