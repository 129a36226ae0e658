package sim

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy/outcome"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/golden")

// fixedTime is the clock of deterministic endpoints: the start of the
// test process, within the validity of the certificates it generates.
var fixedTime = time.Now()

// deterministic makes an endpoint draw its ids from a source seeded with
// its domain, read a fixed clock and use a fixed dialback secret, so that the same negotiation writes
// the same transcript every time.
func deterministic(c *Config) {
	var seed [32]byte
	copy(seed[:], c.Domain)
	c.Rand = rand.NewChaCha8(seed)
	c.Clock = func() time.Time { return fixedTime }
	if c.Settings.Secret == "" {
		// The process's own secret is random: the keys would differ.
		c.Settings.Secret = "golden secret"
	}
}

// golden renders what a transcript must keep from one run to the next:
// the outcome and the XML of each connection in its order. Times are
// left out, and the TLS cipher suite too (it depends on the CPU).
func golden(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "outcome: %s\n%s\n", r.Outcome, r.Explain())
	for _, f := range r.Recovered {
		fmt.Fprintf(&b, "recovered: %s\n", f.Explain())
	}
	if r.TLS != nil {
		fmt.Fprintf(&b, "tls: %s, receiver's certificate %s\n", r.TLS.Version, r.TLS.PeerCertificate)
	}
	fmt.Fprintf(&b, "stream ids: %s\n", strings.Join(r.StreamIDs, " "))
	for _, conn := range []string{mainConn, verifyConn} {
		var entries []Entry
		for _, e := range r.Transcript {
			if e.Conn == conn {
				entries = append(entries, e)
			}
		}
		if len(entries) > 0 {
			fmt.Fprintf(&b, "\n%s connection:\n%s", conn, transcriptText(entries, false))
		}
	}
	return b.String()
}

// TestGoldenTranscripts negotiates one representative of each method and
// of each failure step deterministically and compares the transcript
// with testdata/golden/NAME.txt (go test ./sim -run Golden -update
// rewrites them).
func TestGoldenTranscripts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		init, recv string
		initEdit   func(*Config)
		recvEdit   func(*Config)
		to         string // the domain to initiate to; default the receiver's
	}{
		{name: "sasl-over-tls", init: "tls=Required,sasl=Required,dialback=false", recv: ""},
		{name: "tls-dialback", init: "sasl=NotSupported", recv: "tls=Required,sasl=NotSupported"},
		{name: "tcp-dialback", init: "tls=NotSupported,sasl=NotSupported", recv: ""},
		{name: "fail-tcp", init: "", recv: "", to: "nowhere.test"},
		{name: "fail-stream", init: "", recv: "", initEdit: func(c *Config) { c.Faults = c.Faults.With(OmitFrom) }},
		{name: "fail-starttls", init: "tls=NotSupported", recv: "tls=Required"},
		{name: "fail-tls-handshake", init: "cert=self-signed", recv: "strict=true"},
		{name: "fail-sasl", init: "cert=client-auth-only,dialback=false", recv: "strict=false"},
		{name: "fail-dialback", init: "sasl=NotSupported", recv: "", initEdit: func(c *Config) { c.Faults = c.Faults.With(WrongKey) }},
		{name: "fail-dialback-verify", init: "sasl=NotSupported", recv: "", initEdit: func(c *Config) { c.Unlisted = true }},
		{name: "fail-timeout", init: "", recv: "", initEdit: func(c *Config) { c.Timeout = 300 * time.Millisecond },
			recvEdit: func(c *Config) { c.Faults.SilentAt = outcome.StepSASL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			edits := func(extra func(*Config)) []func(*Config) {
				if extra == nil {
					return []func(*Config){deterministic}
				}
				return []func(*Config){deterministic, extra}
			}
			a := w.endpoint("a.test", tc.init, edits(tc.initEdit)...)
			b := w.endpoint("b.test", tc.recv, edits(tc.recvEdit)...)
			to := b.Domain()
			if tc.to != "" {
				to = tc.to
			}
			got := golden(a.Initiate(context.Background(), to))
			file := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				require.NoError(t, os.WriteFile(file, []byte(got), 0o644))
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "run go test ./sim -run Golden -update to write it")
			assert.Equal(t, string(want), got)
		})
	}
}

// The golden transcripts only prove something if a second run writes the
// same bytes: determinism itself is checked here.
func TestDeterministicModeRepeats(t *testing.T) {
	run := func() string {
		w := newWorld(t)
		a := w.endpoint("a.test", "sasl=NotSupported", deterministic)
		b := w.endpoint("b.test", "tls=Required,sasl=NotSupported", deterministic)
		return golden(a.Initiate(context.Background(), b.Domain()))
	}
	first := run()
	assert.Equal(t, first, run())
	assert.Contains(t, first, "outcome: tls-dialback")
}
