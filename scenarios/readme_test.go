package scenarios

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
)

// Every count the README states about the shipped suites and profiles
// is the real one: the suites table, the robustness paragraph, the
// interop tables and their total, the lync2013 and profiles runs. A
// number that drifts (the robustness suite grew to 42 while the table
// still said 38) fails here, not in a reader's hands.
func TestREADMECountsAreTheRealOnes(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	readme := string(data)
	size := map[string]int{}
	settings := map[string]int{}
	for _, name := range Suites() {
		s, err := Load(name)
		require.NoError(t, err, name)
		size[name] = len(s.Cases)
		distinct := map[string]bool{}
		for _, c := range s.Cases {
			if e, ok := c.real(); ok {
				distinct[settingKey(e.Server)] = true
			}
		}
		settings[name] = len(distinct)
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return n
	}
	checked := 0
	check := func(what string, stated, real int) {
		t.Helper()
		checked++
		assert.Equal(t, real, stated, "README: %s", what)
	}

	table := regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\| (\\d+) \\| ")
	for _, m := range table.FindAllStringSubmatch(readme, -1) {
		if _, ok := size[m[1]]; ok {
			check("suites table, "+m[1], num(m[2]), size[m[1]])
		}
	}
	for _, m := range regexp.MustCompile("`xmppneg run ([a-z0-9-]+)` \\((\\d+) scenarios").FindAllStringSubmatch(readme, -1) {
		check(m[1]+" scenarios", num(m[2]), size[m[1]])
	}
	for _, m := range regexp.MustCompile("`(interop-[a-z0-9]+(?:-[0-9]+)?)` \\| \\d+ \\| a real [\\w .()-]+?(?: under|,) (\\d+) settings").FindAllStringSubmatch(readme, -1) {
		check(m[1]+" settings", num(m[2]), settings[m[1]])
	}
	total := 0
	for _, m := range regexp.MustCompile("\\(`(interop-[a-z0-9]+(?:-[0-9]+)?)`\\) \\| (\\d+) knob settings \\+ (\\d+) server certificates \\| (\\d+) \\| \\*\\*(\\d+) of (\\d+)\\*\\*").FindAllStringSubmatch(readme, -1) {
		check(m[1]+" settings in the interop table", num(m[2])+num(m[3]), settings[m[1]])
		check(m[1]+" negotiations in the interop table", num(m[4]), size[m[1]])
		check(m[1]+" real = oracle = engine", num(m[6]), size[m[1]])
		total += size[m[1]]
	}
	for _, m := range regexp.MustCompile(`Together (\d+) negotiations`).FindAllStringSubmatch(readme, -1) {
		check("interop total", num(m[1]), total)
	}
	for _, m := range regexp.MustCompile(`(?s)matrix with (\d+) real negotiations`).FindAllStringSubmatch(readme, -1) {
		check("make run", num(m[1]), size["lync2013"])
	}
	for _, m := range regexp.MustCompile(`OK: (\d+) of (\d+) rows agree with the full matrix \((\d+) negotiations`).FindAllStringSubmatch(readme, -1) {
		check("verify rows", num(m[2]), len(policy.Full.Rows))
		check("verify negotiations", num(m[3]), size["lync2013"])
	}
	for _, m := range regexp.MustCompile("`xmppneg run profiles` meets every profile with every other, both ways,\\s+with the certificates that break federations \\((\\d+) negotiations").FindAllStringSubmatch(readme, -1) {
		check("profiles run", num(m[1]), size["profiles"])
	}
	section := regexp.MustCompile(`(?s)\| profile \| what it is \| source \|\n\|[-|]+\|\n(.*?)\n\n`).FindStringSubmatch(readme)
	require.NotNil(t, section, "the profiles table")
	check("profiles table", len(regexp.MustCompile("(?m)^\\| `").FindAllString(section[1], -1)), len(policy.Profiles()))
	assert.GreaterOrEqual(t, checked, 20, "the README's counts were found")
}
