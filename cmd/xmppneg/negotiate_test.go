package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type jsonResult struct {
	Outcome string `json:"outcome"`
	Failure *struct {
		Step      string `json:"step"`
		Condition string `json:"condition"`
		By        string `json:"by"`
		Message   string `json:"message"`
	} `json:"failure"`
	Observed struct {
		Outcome string `json:"outcome"`
		Text    string `json:"text"`
	} `json:"observed"`
	Expected *struct {
		Outcome string `json:"outcome"`
	} `json:"expected"`
	TLS *struct {
		Version string `json:"version"`
		Cipher  string `json:"cipher"`
	} `json:"tls"`
	DurationMS float64           `json:"duration_ms"`
	Transcript []json.RawMessage `json:"transcript"`
}

// decodeResults reads the one JSON document negotiate prints.
func decodeResults(t *testing.T, out string) []jsonResult {
	t.Helper()
	var doc struct {
		Negotiations []jsonResult `json:"negotiations"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc), "exactly one JSON document:\n%s", out)
	return doc.Negotiations
}

func TestNegotiateJSON(t *testing.T) {
	code, out, stderr := runCLI("negotiate", "--initiator", "tls=Required,sasl=Optional,dialback=true",
		"--receiver", "tls=Optional,sasl=NotSupported,dialback=true", "--direction", "both", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	rs := decodeResults(t, out)
	require.Len(t, rs, 2)
	for _, r := range rs {
		assert.Equal(t, "tls-dialback", r.Outcome)
		assert.Equal(t, "tls-dialback", r.Observed.Outcome)
		require.NotNil(t, r.Expected, "the oracle's prediction is there")
		assert.Equal(t, "tls-dialback", r.Expected.Outcome)
		assert.Nil(t, r.Failure)
		require.NotNil(t, r.TLS)
		assert.Equal(t, "TLS 1.3", r.TLS.Version)
		assert.Positive(t, r.DurationMS)
		assert.NotEmpty(t, r.Transcript)
	}
}

func TestNegotiateFailureText(t *testing.T) {
	code, out, _ := runCLI("negotiate", "--initiator", "tls=NotSupported,sasl=NotSupported,dialback=true",
		"--receiver", "tls=Required,sasl=Optional,dialback=true", "--transcript")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, out, "FAILED")
	assert.Contains(t, out, "step:       starttls")
	assert.Contains(t, out, "unsupported-feature")
	assert.Contains(t, out, "receiver requires TLS but initiator does not support it")
	assert.Contains(t, out, "<required/>", "the transcript is printed")
}

func TestNegotiateCertificateFailureJSON(t *testing.T) {
	code, out, _ := runCLI("negotiate", "--initiator", "tls=Required,sasl=Optional,dialback=true",
		"--receiver", "tls=Optional,sasl=NotSupported,dialback=true,cert=expired", "-o", "json")
	assert.Equal(t, exitFail, code)
	rs := decodeResults(t, out)
	require.Len(t, rs, 1)
	assert.Equal(t, "failed", rs[0].Outcome)
	require.NotNil(t, rs[0].Failure)
	assert.Equal(t, "tls-handshake", rs[0].Failure.Step)
	assert.Equal(t, "initiator", rs[0].Failure.By)
	assert.Contains(t, rs[0].Failure.Message, "expired")
	assert.Nil(t, rs[0].TLS)
}

func TestNegotiateUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"negotiate", "--initiator", "tls=Sometimes"}, `--initiator: tls: invalid level "Sometimes"`},
		{[]string{"negotiate", "--receiver", "colour=blue"}, `--receiver: unknown key "colour"`},
		{[]string{"negotiate", "--direction", "sideways"}, `--direction: "sideways"`},
		{[]string{"negotiate", "--initiator-domain", "x.test", "--receiver-domain", "x.test"}, "give them different domains"},
		{[]string{"negotiate", "--initiator-domain", "a b"}, `--initiator-domain: invalid domain "a b"`},
		{[]string{"certs", "--domain", "a.test"}, "--out and at least one --domain"},
		{[]string{"certs", "--out", "x", "--domain", "a.test", "--state", "mouldy"}, `invalid certificate state "mouldy"`},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, exitUsage, code, tc.args)
		assert.Contains(t, stderr, tc.err, tc.args)
	}
}

func TestCertsWritesPEM(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := runCLI("certs", "--out", dir, "--domain", "a.test", "--domain", "b.test")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, out, "a.test.crt")
	for _, f := range []string{"ca.pem", "ca.key", "a.test.crt", "a.test.key", "b.test.crt", "b.test.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
		if strings.HasSuffix(f, ".key") {
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
		}
	}
}
