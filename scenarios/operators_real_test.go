package scenarios

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy/outcome"
	"xmppneg/policy/serverconf"
	"xmppneg/sim/realserver"
)

// requireReal skips in short mode and fails, saying how to install them,
// when the servers are missing.
func requireReal(t *testing.T, servers ...string) {
	t.Helper()
	t.Parallel() // their servers are their own; the starts overlap
	if testing.Short() {
		t.Skip("go test -short runs no real server (go test and make test do)")
	}
	for _, s := range servers {
		if err := realserver.Require(s); err != nil {
			t.Fatalf("%v", err)
		}
	}
}

// assertFileWarns checks that reading file gives a file-wide warning
// with that code, as explain shows it.
func assertFileWarns(t *testing.T, file, code string) {
	t.Helper()
	c, err := serverconf.Load(file, serverconf.Options{})
	require.NoError(t, err)
	var codes []string
	for _, w := range c.Warnings {
		codes = append(codes, w.Code)
	}
	assert.Contains(t, codes, code, "%s: explain's warnings", file)
}

// loadExample reads a scenario file of examples/, whose relative
// configuration paths are its neighbours.
func loadExample(t *testing.T, name, text string) *Suite {
	t.Helper()
	file := filepath.Join("examples", name)
	data := []byte(text)
	if text == "" {
		var err error
		data, err = os.ReadFile(file)
		require.NoError(t, err)
	}
	s, err := Parse(file, data)
	require.NoError(t, err)
	return s
}

// TestOperatorFilesOnRealServers starts Prosody and ejabberd on each
// example configuration file, and on Debian's shipped one, and checks
// that every negotiation comes out as predicted from reading the file,
// in both directions, against harness partners in several certificate
// states. The server runs the very file: only ports, listeners and
// paths are rewritten.
func TestOperatorFilesOnRealServers(t *testing.T) {
	requireReal(t, "prosody", "ejabberd")
	s := loadExample(t, "operators-real.yaml", "")
	files := map[string]map[string]bool{}
	var debians []string // ids of the cases on Debian's shipped files
	for _, c := range s.Cases {
		real, ok := c.real()
		require.True(t, ok, "%s: no real server", c.ID)
		fs, ok := real.Server.(realserver.FileSetting)
		require.True(t, ok, "%s: not started on a file", c.ID)
		if files[fs.Server] == nil {
			files[fs.Server] = map[string]bool{}
		}
		base := filepath.Base(fs.File)
		files[fs.Server][base] = true
		if debiansFiles[base] {
			debians = append(debians, regexp.QuoteMeta(c.ID))
		}
	}
	for _, server := range []string{"prosody", "ejabberd"} {
		assert.GreaterOrEqual(t, len(files[server]), 5, "%s: the example files run (%v)", server, files[server])
	}
	assert.True(t, files["ejabberd"]["ejabberd.yml"], "Debian's shipped ejabberd.yml runs")
	assert.True(t, files["prosody"]["prosody.cfg.lua"], "Debian's shipped prosody.cfg.lua runs")
	assert.True(t, files["jabberd2"]["s2s.xml"], "Debian's shipped s2s.xml runs")
	opt := Options{}
	want := len(s.Cases)
	if raceEnabled {
		// Each file is a server start, which the race detector does not
		// make cheaper: here it watches the runner start each kind of
		// server on a file (Debian's shipped three), and make interop
		// runs the whole suite in a build without it.
		opt.Filter = regexp.MustCompile("^(" + strings.Join(debians, "|") + ")$")
		want = len(Select(s.Cases, opt))
		require.NotZero(t, want, "no case on Debian's shipped files")
		t.Logf("race detector: %d of the suite's %d negotiations (make interop runs them all)", want, len(s.Cases))
	}
	rep := execute(t, []*Suite{s}, opt)
	require.Len(t, rep.Negotiations, want)
	for _, n := range rep.Negotiations {
		if !n.Pass {
			transcript := "(no transcript)"
			if n.Result != nil {
				transcript = n.Result.TranscriptText()
			}
			t.Errorf("%s: %s %s\n%s\nserver log:\n%s", n.Case.ID, n.Status(), n.Why, transcript, n.ServerLog)
		}
	}
}

// A Prosody 0.12 host without a certificate (Debian's own localhost, and
// a new VirtualHost nobody gave one) still offers STARTTLS, required, and
// fails the handshake: every partner that takes the offer fails at the
// TLS handshake, refused by Prosody. Its profile says so
// (no_cert_tls=offer-and-fail), explain warns of it, and the two files
// are in operators-real.yaml; here the outcome itself is checked.
func TestProsodyWithoutCertificateOffersTLSAndFailsIt(t *testing.T) {
	requireReal(t, "prosody")
	for _, file := range []string{"prosody/prosody-no-cert.cfg.lua", "../../policy/serverconf/testdata/debian/prosody/prosody.cfg.lua"} {
		c, err := serverconf.Load(filepath.Join("examples", file), serverconf.Options{})
		require.NoError(t, err)
		h, err := c.Only()
		require.NoError(t, err)
		assert.Equal(t, "missing", h.Knobs["cert"], file)
		var warned bool
		for _, w := range h.Warnings {
			warned = warned || (w.Code == "no-certificate" && strings.Contains(w.Message, "still offers STARTTLS"))
		}
		assert.True(t, warned, "%s: explain warns that Prosody offers STARTTLS without a certificate", file)
	}
	s := loadExample(t, "no-cert.yaml", `suite: no-cert
sweeps:
  - name: files
    server: prosody
    settings:
      - {config: prosody/prosody-no-cert.cfg.lua}
      - {config: ../../policy/serverconf/testdata/debian/prosody/prosody.cfg.lua}
    partners: [C1, M13]
    directions: partner-initiates
    timeout: 1s
    expect: predicted
`)
	rep := execute(t, []*Suite{s}, Options{})
	require.Len(t, rep.Negotiations, 4)
	for _, n := range rep.Negotiations {
		got := n.Observed()
		require.NotNil(t, got.Failure, "%s: %s", n.Case.ID, got)
		assert.Equal(t, outcome.StepTLSHandshake, got.Failure.Step, "%s: %s\n%s", n.Case.ID, got, n.ServerLog)
		assert.Equal(t, outcome.HandshakeFailure, got.Failure.Condition, "%s: %s", n.Case.ID, got)
		assert.Equal(t, outcome.Receiver, got.Failure.By, "%s: %s", n.Case.ID, got)
		assert.True(t, n.Pass, "%s: %s %s", n.Case.ID, n.Status(), n.Why)
	}
}

// An ejabberd whose s2s_access names an access rule that access_rules
// does not define federates with no one: it opens no stream of its own
// and refuses every incoming one. explain warns of it.
func TestEjabberdUndefinedS2SAccessFederatesWithNoOne(t *testing.T) {
	requireReal(t, "ejabberd")
	assertFileWarns(t, "examples/ejabberd/ejabberd-macros.yml", "s2s-access-undefined")
	s := loadExample(t, "s2s-access.yaml", `suite: s2s-access
sweeps:
  - name: files
    server: ejabberd
    settings:
      - {config: ejabberd/ejabberd-macros.yml}
    partners: [C1, C3, M13]
    directions: both
    timeout: 1s
    expect: predicted
`)
	rep := execute(t, []*Suite{s}, Options{})
	require.Len(t, rep.Negotiations, 6)
	for _, n := range rep.Negotiations {
		got := n.Observed()
		assert.False(t, got.OK(), "%s: %s", n.Case.ID, got)
		if n.Case.RowInitiates {
			require.NotNil(t, got.Failure, n.Case.ID)
			assert.Equal(t, outcome.StepTCP, got.Failure.Step, "%s: ejabberd opens no stream: %s", n.Case.ID, got)
		}
	}
}

// jabberd2 on an s2s.xml without <lookup><srv> asks no SRV record: it
// connects to port 5269 of a partner's address, so a partner published
// by SRV on another port is never reached. explain warns of it.
func TestJabberd2WithoutSRVLookupConnectsTo5269(t *testing.T) {
	requireReal(t, "jabberd2")
	assertFileWarns(t, "examples/jabberd2/s2s-no-srv-lookup.xml", "no-srv-lookup")
	s := loadExample(t, "no-srv.yaml", `suite: no-srv
sweeps:
  - name: files
    server: jabberd2
    settings:
      - {config: jabberd2/s2s-no-srv-lookup.xml}
    partners: [C3]
    directions: row-initiates
    timeout: 1s
    expect: predicted
`)
	rep := execute(t, []*Suite{s}, Options{})
	require.Len(t, rep.Negotiations, 1)
	n := rep.Negotiations[0]
	got := n.Observed()
	require.NotNil(t, got.Failure, "%s: %s", n.Case.ID, got)
	assert.Equal(t, outcome.StepTCP, got.Failure.Step, "jabberd2 never reaches the partner: %s", got)
	assert.Contains(t, n.ServerLog, "port=5269]", "jabberd2 tried port 5269")
	assert.False(t, n.Pass, "the prediction (SRV) holds now: put the file in operators-real.yaml")
}

// debiansFiles are the configuration files Debian's packages install.
var debiansFiles = map[string]bool{"prosody.cfg.lua": true, "ejabberd.yml": true, "s2s.xml": true}
