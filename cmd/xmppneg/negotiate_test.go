package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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

// A CA already in the directory is kept, so that servers set up with it
// still validate the new certificates; --new-ca replaces it.
func TestCertsReusesTheCAItFinds(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI("certs", "--out", dir, "--domain", "a.test")
	require.Equal(t, exitOK, code, stderr)
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)

	code, out, stderr := runCLI("certs", "--out", dir, "--domain", "c.test", "--state", "expired")
	require.Equal(t, exitOK, code, stderr)
	again, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	assert.Equal(t, ca, again, "the CA is kept")
	assert.Contains(t, out, "kept "+filepath.Join(dir, "ca.pem"))
	m := regexp.MustCompile(`expired on (\d{4}-\d\d-\d\d \d\d:\d\d) UTC`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	when, err := time.Parse("2006-01-02 15:04", m[1])
	require.NoError(t, err)
	assert.True(t, when.Before(time.Now()), "an expired certificate's notAfter is in the past: %s", out)

	// The new leaf verifies against the kept CA.
	leaf, err := os.ReadFile(filepath.Join(dir, "c.test.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	blk, _ := pem.Decode(leaf)
	cert, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: cert.NotBefore.Add(time.Minute), DNSName: "c.test"})
	assert.NoError(t, err)

	code, out, _ = runCLI("certs", "--out", dir, "--domain", "a.test", "--new-ca")
	require.Equal(t, exitOK, code)
	replaced, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	assert.NotEqual(t, ca, replaced)
	assert.Contains(t, out, "(the CA to trust)")
}
