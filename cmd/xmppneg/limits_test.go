package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy/domain"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/safefile"
	"xmppneg/policy/serverconf"
	"xmppneg/scenarios"
	"xmppneg/sim"
	"xmppneg/sim/probe"
	"xmppneg/sim/resolve"
)

// The limits table of docs/hostile-peers.md states the numbers the code
// has: each row names its constant, and the default it shows is that
// constant's value.
func TestLimitsDocMatchesTheCode(t *testing.T) {
	count := func(n int) string { return fmt.Sprint(n) }
	want := map[string]string{
		"resolve.MaxTargets":           count(resolve.MaxTargets),
		"resolve.MaxAddrs":             count(resolve.MaxAddrs),
		"resolve.MaxAnswerRecords":     count(resolve.MaxAnswerRecords),
		"sim.MaxTriedShown":            count(sim.MaxTriedShown),
		"probe.MaxScans":               count(probe.MaxScans),
		"sim.DefaultMaxConnsPerSource": count(sim.DefaultMaxConnsPerSource),
		"sim.SourcePrefixV6":           fmt.Sprintf("/%d", sim.SourcePrefixV6),
		"scenarios.MaxSuiteBytes":      safefile.Size(scenarios.MaxSuiteBytes),
		"lyncpartner.MaxListBytes":     safefile.Size(lyncpartner.MaxListBytes),
		"scenarios.MaxReportBytes":     safefile.Size(scenarios.MaxReportBytes),
		"scenarios.MaxTranscriptFile":  safefile.Size(scenarios.MaxTranscriptFile),
		"serverconf.MaxFileBytes":      safefile.Size(serverconf.MaxFileBytes),
		"serverconf.MaxFiles":          count(serverconf.MaxFiles),
		"main.MaxSecretBytes":          safefile.Size(MaxSecretBytes),
		"domain.MaxLen":                fmt.Sprintf("%d bytes", domain.MaxLen),
		"certs.KeyMode":                fmt.Sprintf("mode %04o", certs.KeyMode),
	}
	data, err := os.ReadFile("../../docs/hostile-peers.md")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || !strings.HasPrefix(strings.TrimSpace(cells[3]), "`") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[3]), "`")
		w, ok := want[name]
		if !assert.True(t, ok, "the table names %s, which this test does not know", name) {
			continue
		}
		seen[name] = true
		assert.Equal(t, w, strings.TrimSpace(cells[2]), "the default of %s", name)
	}
	for name := range want {
		assert.True(t, seen[name], "%s is not in the table", name)
	}
}
