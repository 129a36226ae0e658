package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
	"xmppneg/sim/realserver"
	"xmppneg/sim/resolve"
)

// partners --probe learns what each undeclared partner runs instead of
// guessing: on loopback, a real Prosody and endpoints configured as
// 'xmppneg serve' runs them, all published through a loopback DNS
// server, and a partner with no record at all. Each reached partner is
// judged and fixed as a declared one would be, with the settings the
// probe learned; the one not reached is unreachable, with the DNS
// answers.
func TestPartnersProbeLearnsThePartners(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs a real Prosody: go test -short runs no real server (go test and make test do)")
	}
	if err := realserver.Require("prosody"); err != nil {
		t.Fatalf("%v", err)
	}
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	harnessAddr := freeAddr(t)
	require.NoError(t, dns.Set("harness.test", harnessAddr))
	pki, err := certs.Default()
	require.NoError(t, err)
	pkiDir := filepath.Join(t.TempDir(), "pki")
	require.NoError(t, pki.WritePEM(pkiDir, certs.Valid, "harness.test"))

	// Endpoints as serve runs them: they find the harness, for their
	// dialback check and their answers, through the same DNS.
	n := sim.NewNetwork()
	n.UseDNS(&resolve.Resolver{Server: dns.Addr(), Timeout: 2 * time.Second})
	for domain, spec := range map[string]string{
		"expired.example":  "cert=expired",
		"dialback.example": "tls=Required,sasl=NotSupported",
	} {
		s, err := policy.ParseSpec(spec)
		require.NoError(t, err)
		ep, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: s, Net: n, PKI: pki, Unlisted: true, RecordReads: true})
		require.NoError(t, err)
		require.NoError(t, ep.Start())
		defer ep.Close()
		require.NoError(t, dns.Set(domain, ep.Addr()))
	}
	p, err := realserver.StartProsody("prosody.example", realserver.ProsodySettings{RequireEncryption: true, Dialback: true, Cert: certs.Valid}, pki, dns.Addr())
	require.NoError(t, err)
	defer p.Stop()
	require.NoError(t, dns.Set("prosody.example", p.Addr()))

	list := writeFile(t, "partners.ps1", strings.Join([]string{
		// Google Talk's entry: no TLS, which Prosody requires.
		"New-CsXmppAllowedPartner -Identity prosody.example -TlsNegotiation NotSupported -SaslNegotiation NotSupported -SupportDialbackNegotiation $true",
		"New-CsXmppAllowedPartner -Identity expired.example -TlsNegotiation Optional -SaslNegotiation Optional",
		// The defaults (M1): dialback does not operate, and this server
		// has no SASL.
		"New-CsXmppAllowedPartner -Identity dialback.example",
		"New-CsXmppAllowedPartner -Identity gone.example",
	}, "\n"))
	args := []string{"partners", list, "--probe", "--resolver", dns.Addr(), "--pki", pkiDir, "--from", "harness.test", "--listen", harnessAddr, "--timeout", "3s"}
	code, out, stderr := runCLI(args...)
	assert.Equal(t, exitFail, code, "%s\n%s", out, stderr)

	// Prosody: learned as it is (TLS required, EXTERNAL, dialback), its
	// closest profile prosody-0.12; the entry without TLS fails, and the
	// fix gives the gateway TLS.
	assert.Regexp(t, `prosody\.example +M17 +NotSupported/NotSupported/True +probed: Req/Opt/T, cert=valid, closest prosody-0\.12`, out)
	assert.Contains(t, out, "[probed] probed: the harness's own negotiation with it came to SASL over TLS, the probe's verdict: works")
	assert.Regexp(t, `Set-CsXmppAllowedPartner -Identity prosody\.example -TlsNegotiation (Required|Optional)`, out)
	// The expired certificate, learned, is what the fix replaces.
	assert.Regexp(t, `expired\.example +M9 +Optional/Optional/True +probed: Opt/Opt/T, cert=expired`, out)
	assert.Contains(t, out, "the partner must replace its certificate (expired)")
	// Dialback only: the fix lowers SASL, and says it must.
	assert.Contains(t, out, "Set-CsXmppAllowedPartner -Identity dialback.example -SaslNegotiation Optional")
	assert.Contains(t, out, "it lowers -SaslNegotiation from Required to Optional, because no setting that keeps them authenticates with this partner")
	// Nothing in DNS: unreachable, not unknown, with the answers.
	assert.Regexp(t, `gone\.example +M1 +.* +unreachable`, out)
	assert.Contains(t, out, "SRV _xmpp-server._tcp.gone.example. → NXDOMAIN")
	assert.Contains(t, out, "1 unreachable, 0 unknown")

	code, out, _ = runCLI(append(args, "-o", "json")...)
	assert.Equal(t, exitFail, code)
	var rep struct {
		Partners []struct {
			Domain string `json:"domain"`
			Status string `json:"status"`
			Probed *struct {
				Learned *struct {
					Settings       string   `json:"settings"`
					Cert           string   `json:"cert"`
					ClosestProfile string   `json:"closest_profile"`
					Evidence       []string `json:"evidence"`
				} `json:"learned"`
				DNS []string `json:"dns"`
			} `json:"probed"`
		} `json:"partners"`
		Summary struct {
			Unreachable int `json:"unreachable"`
		} `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	require.Len(t, rep.Partners, 4)
	byName := map[string]int{}
	for i, p := range rep.Partners {
		byName[p.Domain] = i
		require.NotNil(t, p.Probed, p.Domain)
	}
	pr := rep.Partners[byName["prosody.example"]]
	require.NotNil(t, pr.Probed.Learned)
	assert.Equal(t, "prosody-0.12", pr.Probed.Learned.ClosestProfile)
	assert.Contains(t, pr.Probed.Learned.Settings, "tls=Required,sasl=Optional,dialback=true,cert=valid")
	assert.NotEmpty(t, pr.Probed.Learned.Evidence)
	assert.Equal(t, "fails", pr.Status)
	assert.Equal(t, "unreachable", rep.Partners[byName["gone.example"]].Status)
	assert.Nil(t, rep.Partners[byName["gone.example"]].Probed.Learned)
	assert.Equal(t, 1, rep.Summary.Unreachable)

	code, _, stderr = runCLI("partners", list, "--from", "harness.test")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--from goes with --probe")
}
