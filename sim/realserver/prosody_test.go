package realserver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/certs"
	"xmppneg/sim/loopdns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A missing server is a failure that says how to install it, never a skip.
func requireInstalled(t *testing.T, server string) {
	t.Helper()
	if err := Require(server); err != nil {
		t.Fatalf("%v", err)
	}
}

// TestProsodyInterop negotiates with a real Prosody under every setting
// of the sweep, against each interop partner, in both directions, and
// checks that every outcome (the method, or failure) is the oracle's
// prediction for Prosody's settings mapped to the harness's vocabulary.
func TestProsodyInterop(t *testing.T) {
	requireInstalled(t, "prosody")
	outs, err := RunInterop(context.Background(), "prosody", ProsodySettingsSweep(), InteropPartners(), 2*time.Second)
	require.NoError(t, err)
	require.Len(t, outs, len(ProsodySettingsSweep())*len(InteropPartners())*2)
	checkInterop(t, outs)
}

func checkInterop(t *testing.T, outs []InteropOutcome) {
	t.Helper()
	methods := map[string]int{}
	for _, o := range outs {
		dir := "harness→" + o.Server
		if o.ServerInitiates {
			dir = o.Server + "→harness"
		}
		assert.True(t, o.Agree, "%s %s, partner %s, %s: observed %s, predicted %s\n%s\nserver log:\n%s", o.Server, o.ServerSettings, o.Partner, dir, o.Observed(), o.Predicted(), o.Result.TranscriptText(), o.ServerLog)
		methods[o.Result.Outcome]++
	}
	// The sweep is only worth something if the server really negotiated.
	for _, m := range []string{"sasl-over-tls", "tls-dialback", "tcp-dialback", "failed"} {
		assert.Positive(t, methods[m], "no negotiation ended with %s", m)
	}
}

func TestProsodyShellAndStop(t *testing.T) {
	requireInstalled(t, "prosody")
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	p, err := StartProsody("prosody.test", ProsodySettings{RequireEncryption: true, Dialback: true}, pki, dns.Addr())
	require.NoError(t, err)
	out, err := p.Shell(context.Background(), "server:version()")
	require.NoError(t, err)
	assert.Contains(t, out, "0.12")
	_, err = p.Shell(context.Background(), "no_such_thing()")
	assert.Error(t, err)
	assert.Contains(t, p.Log(), "prosody.test")
	assert.NoError(t, p.Stop())
}
