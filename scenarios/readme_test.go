package scenarios

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/sim"
	"xmppneg/sim/realserver"
)

// docFiles are the pages whose stated facts are checked: the README,
// every page of docs/, and the Makefile (its repeat target names a
// count).
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	require.NoError(t, err)
	files = append(files, "../README.md", "../Makefile")
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		out[strings.TrimPrefix(f, "../")] = string(data)
	}
	require.Contains(t, out, "docs/suites.md")
	return out
}

// Every count the README and docs/*.md state about the shipped suites
// and profiles is the real one: the suites tables, the robustness
// paragraph, the interop tables and their total, the verify and repeat
// runs, the benchmarks' sizes, the profiles run and table. A number that
// drifts (the robustness suite grew to 42 while the table still said 38)
// fails here, not in a reader's hands. A sentence that states a suite's
// size in a new way needs a pattern here; the last check finds numbers
// next to a suite's name that no pattern read.
func TestDocsCountsAreTheRealOnes(t *testing.T) {
	size := map[string]int{}
	settings := map[string]int{}
	handWritten := map[string]int{}
	for _, name := range Suites() {
		s, err := Load(name)
		require.NoError(t, err, name)
		size[name] = len(s.Cases)
		distinct := map[string]bool{}
		for _, c := range s.Cases {
			if e, ok := c.real(); ok {
				distinct[settingKey(e.Server)] = true
			}
			if c.Sweep == "" {
				handWritten[name]++
			}
		}
		settings[name] = len(distinct)
	}
	num := func(s string) int {
		n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		require.NoError(t, err)
		return n
	}
	checked := 0
	for file, doc := range docFiles(t) {
		// read marks the spans a pattern checked, for the last check.
		var read [][2]int
		check := func(what string, stated, real int) {
			t.Helper()
			checked++
			assert.Equal(t, real, stated, "%s: %s", file, what)
		}
		each := func(pattern string, f func(m []string)) {
			re := regexp.MustCompile(pattern)
			for _, idx := range re.FindAllStringSubmatchIndex(doc, -1) {
				m := make([]string, len(idx)/2)
				for i := range m {
					if idx[2*i] >= 0 {
						m[i] = doc[idx[2*i]:idx[2*i+1]]
					}
				}
				read = append(read, [2]int{idx[0], idx[1]})
				f(m)
			}
		}

		each("(?m)^\\| `([a-z0-9-]+)` \\| (\\d+) \\| ", func(m []string) {
			if _, ok := size[m[1]]; ok {
				check("suites table, "+m[1], num(m[2]), size[m[1]])
			}
		})
		each("`xmppneg run ([a-z0-9-]+)` \\((\\d+) scenarios", func(m []string) {
			check(m[1]+" scenarios", num(m[2]), size[m[1]])
		})
		each("`(interop-[a-z0-9]+(?:-[0-9]+)?)` \\| \\d+ \\| a real [\\w .()-]+?(?: under|,) (\\d+) settings", func(m []string) {
			check(m[1]+" settings", num(m[2]), settings[m[1]])
		})
		each("`(interop-[a-z0-9]+(?:-[0-9]+)?)` \\| \\d+ \\| [^|\\n]*?, and (\\d+) scenarios", func(m []string) {
			check(m[1]+" scenarios beside the sweeps", num(m[2]), handWritten[m[1]])
		})
		total := 0
		each("\\(`(interop-[a-z0-9]+(?:-[0-9]+)?)`\\) \\| (\\d+) knob settings \\+ (\\d+) server certificates \\| (\\d+) \\| \\*\\*(\\d+) of (\\d+)\\*\\*", func(m []string) {
			check(m[1]+" settings in the interop table", num(m[2])+num(m[3]), settings[m[1]])
			check(m[1]+" negotiations in the interop table", num(m[4]), size[m[1]])
			check(m[1]+" real = oracle = engine", num(m[6]), size[m[1]])
			total += size[m[1]]
		})
		each(`Together (\d+) negotiations`, func(m []string) {
			check("interop total", num(m[1]), total)
		})
		each(`(?s)matrix with (\d+) real negotiations`, func(m []string) {
			check("make run", num(m[1]), size["lync2013"])
		})
		each(`verified with (\d+) real negotiations`, func(m []string) {
			check("verify's title", num(m[1]), size["lync2013"])
		})
		each(`OK: (\d+) of (\d+) rows agree with the full matrix \((\d+) negotiations`, func(m []string) {
			check("verify rows", num(m[2]), len(policy.Full.Rows))
			check("verify negotiations", num(m[3]), size["lync2013"])
		})
		each(`lync2013 x(\d+) \((\d+) negotiations`, func(m []string) {
			check("lync2013 repeated", num(m[2]), num(m[1])*size["lync2013"])
		})
		each(`the lync2013 suite (\d+) times, (\d+) negotiations`, func(m []string) {
			check("lync2013 repeated", num(m[2]), num(m[1])*size["lync2013"])
		})
		each("`xmppneg run ([a-z0-9-]+) --repeat (\\d+)` \\(([\\d,]+) negotiations", func(m []string) {
			check(m[1]+" repeated", num(m[3]), num(m[2])*size[m[1]])
		})
		each("`Benchmark(VerifyLync2013|Pairwise)` \\(([\\d,]+) negotiations", func(m []string) {
			suite := map[string]string{"VerifyLync2013": "lync2013", "Pairwise": "pairwise"}[m[1]]
			check("Benchmark"+m[1], num(m[2]), size[suite])
		})
		each(`(\d+) shards, (\d+) negotiations`, func(m []string) {
			check("merged shards of lync2013", num(m[2]), size["lync2013"])
		})
		each(`pairwise makes \d+, [^.]*?, which at ([\d,]+) negotiations`, func(m []string) {
			check("pairwise in the TLS budget", num(m[1]), size["pairwise"])
		})
		each("`xmppneg run profiles` meets every profile with every other, both ways,\\s+with the certificates that break federations \\((\\d+) negotiations", func(m []string) {
			check("profiles run", num(m[1]), size["profiles"])
		})
		each(`(?s)\| profile \| what it is \| source \|\n\|[-|]+\|\n(.*?)\n\n`, func(m []string) {
			var names []string
			for _, row := range regexp.MustCompile("(?m)^\\| `([a-z0-9.-]+)`").FindAllStringSubmatch(m[1], -1) {
				names = append(names, row[1])
			}
			var real []string
			for _, p := range policy.Profiles() {
				real = append(real, p.Name)
			}
			checked++
			assert.Equal(t, real, names, "%s: the profiles table", file)
		})

		// A number of negotiations or scenarios in the same sentence as a
		// suite's name, that no pattern above read, is a count nobody
		// checks.
		suiteNames := strings.Join(Suites(), "|")
		stated := regexp.MustCompile(`([\d,]*\d) (?:real )?(?:negotiations|scenarios)`)
		for _, idx := range stated.FindAllStringIndex(doc, -1) {
			if slices.ContainsFunc(read, func(r [2]int) bool { return r[0] <= idx[0] && idx[1] <= r[1] }) {
				continue
			}
			start := strings.LastIndexAny(doc[:idx[0]], ".\n|") + 1
			sentence := doc[start:idx[1]]
			if m := regexp.MustCompile(`\b(` + suiteNames + `)\b`).FindString(sentence); m != "" {
				t.Errorf("%s: %q states a count of %s that no check reads: add a pattern to TestDocsCountsAreTheRealOnes", file, strings.TrimSpace(sentence), m)
			}
		}
	}
	assert.GreaterOrEqual(t, checked, 30, "the docs' counts were found")
}

// The knobs table of docs/concepts.md is the knobs: every behaviour knob,
// with its values in order, and nothing else; the settings table lists
// every certificate state.
func TestDocsKnobsAreTheRealOnes(t *testing.T) {
	data, err := os.ReadFile("../docs/concepts.md")
	require.NoError(t, err)
	doc := string(data)
	section := regexp.MustCompile(`(?s)\| knob \| values[^\n]*\n\|[-|]+\|\n(.*?)\n\n`).FindStringSubmatch(doc)
	require.NotNil(t, section, "docs/concepts.md: the knobs table")
	var keys []string
	for _, row := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([^|]*) \\|").FindAllStringSubmatch(section[1], -1) {
		keys = append(keys, row[1])
		var values []string
		for _, v := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(row[2], -1) {
			values = append(values, v[1])
		}
		assert.Equal(t, policy.KnobValues(row[1]), values, "docs/concepts.md: the values of %s, the zero value first", row[1])
	}
	assert.ElementsMatch(t, policy.KnobKeys(), keys, "docs/concepts.md: the knobs table has a row per knob")
	settingsRow := regexp.MustCompile("(?m)^\\| behaviour knobs \\| (.*)$").FindStringSubmatch(doc)
	require.NotNil(t, settingsRow, "docs/concepts.md: the behaviour knobs row of the settings table")
	var listed []string
	for _, v := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(settingsRow[1], -1) {
		listed = append(listed, v[1])
	}
	assert.ElementsMatch(t, policy.KnobKeys(), listed, "docs/concepts.md: the settings table lists every knob")

	certRow := regexp.MustCompile("(?m)^\\| `cert` \\| (.*)$").FindStringSubmatch(doc)
	require.NotNil(t, certRow, "docs/concepts.md: the cert setting")
	var states []certs.State
	for _, v := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(certRow[1], -1) {
		states = append(states, certs.State(v[1]))
	}
	assert.Equal(t, certs.States, states, "docs/concepts.md: the certificate states")
}

// Every file, package and Go name docs/architecture.md mentions (in
// backquotes) exists: a checklist that names a function a refactoring
// removed fails here, so the checklists stay true of the code.
func TestArchitectureNamesExist(t *testing.T) {
	data, err := os.ReadFile("../docs/architecture.md")
	require.NoError(t, err)
	words := map[string]bool{}
	word := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// ../report is where make's reports go; policy/report is a package.
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "bin" || path == filepath.Join("..", "report")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, w := range word.FindAllString(string(src), -1) {
				words[w] = true
			}
		}
		return nil
	})
	require.NoError(t, err)
	makefile, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	for _, w := range word.FindAllString(string(makefile), -1) {
		words[w] = true
	}
	path := regexp.MustCompile(`^[a-z0-9_./-]+/[a-z0-9_.-]*$|^[a-z0-9_-]+\.(go|yaml|txt|md)$`)
	ident := regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*\.)?([A-Za-z_][A-Za-z0-9_]*)$`)
	checked := 0
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(string(data), -1) {
		tok := m[1]
		switch {
		case strings.Contains(strings.ToLower(tok), "xxx"):
			// A pattern for a new name: interop-xxx.yaml, serveXxx.
		case strings.HasPrefix(tok, "mellium.im/"), strings.HasPrefix(tok, "xmpp."), strings.HasPrefix(tok, "tls."):
			// Names of the libraries used, not of this module.
		case path.MatchString(tok) && strings.Contains(tok, "/"):
			_, err := os.Stat(filepath.Join("..", tok))
			assert.NoError(t, err, "docs/architecture.md names %s, which does not exist", tok)
			checked++
		case ident.MatchString(tok) && strings.ContainsAny(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
			// A Go name (it has a capital: startTLSChoice, Endpoint.Initiate);
			// lower-case words are spec values and YAML keys.
			name := ident.FindStringSubmatch(tok)[2]
			assert.True(t, words[name], "docs/architecture.md names %s, which no Go file has", tok)
			checked++
		}
	}
	assert.Greater(t, checked, 50, "names found in docs/architecture.md")
}

// The layers drawn in docs/architecture.md are the imports: every
// package of the module is in the drawing, and imports only packages of
// rows below its own.
func TestArchitectureLayersAreTheImports(t *testing.T) {
	data, err := os.ReadFile("../docs/architecture.md")
	require.NoError(t, err)
	block := regexp.MustCompile("(?s)<!-- layers:[^\n]*\n```\n(.*?)```").FindStringSubmatch(string(data))
	require.NotNil(t, block, "docs/architecture.md: the drawing of the layers")
	row := map[string]int{}
	for i, line := range strings.Split(strings.TrimRight(block[1], "\n"), "\n") {
		names, _, _ := strings.Cut(line, "  ")
		for _, name := range strings.Split(names, " · ") {
			row["xmppneg/"+strings.TrimSpace(name)] = i
		}
	}
	imports := map[string]map[string]bool{} // package: the module's packages it imports
	fset := token.NewFileSet()
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("..", filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := "xmppneg/" + filepath.ToSlash(rel)
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "xmppneg/") {
				imports[pkg][p] = true
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, imports, "xmppneg/sim")
	for pkg, imps := range imports {
		r, ok := row[pkg]
		var uses []string
		for imp := range imps {
			uses = append(uses, strings.TrimPrefix(imp, "xmppneg/"))
		}
		slices.Sort(uses)
		if !assert.True(t, ok, "docs/architecture.md: %s is not in the drawing of the layers (put it in a row above all of: %s)", pkg, strings.Join(uses, ", ")) {
			continue
		}
		for imp := range imps {
			if below, drawn := row[imp]; drawn { // one not drawn is reported as such
				assert.Greater(t, below, r, "docs/architecture.md: %s imports %s, which is not in a row below it", pkg, imp)
			}
		}
	}
	for pkg := range row {
		assert.Contains(t, imports, pkg, "docs/architecture.md draws %s, which is no package", pkg)
	}
}

// The scenario file docs/suites.md shows is one the loader takes, every
// key and value of it.
func TestDocsScenarioExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../docs/suites.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(string(data))
	require.NotNil(t, m, "docs/suites.md: the example scenario file")
	s, err := Parse("docs/suites.md", []byte(m[1]))
	require.NoError(t, err)
	assert.NotEmpty(t, s.Cases)

	// And the endpoint keys it lists are the loader's.
	keys := regexp.MustCompile("(?s)Endpoint keys: `([^`]*)`(.*?)\\.").FindStringSubmatch(string(data))
	require.NotNil(t, keys, "docs/suites.md: the endpoint keys")
	listed := strings.Fields(keys[1])
	for _, k := range endpointKeys {
		if !slices.Contains(policy.KnobKeys(), k) {
			assert.True(t, slices.Contains(listed, k) || strings.Contains(keys[2], "`"+k+"`"), "docs/suites.md: endpoint key %s", k)
		}
	}
	for _, k := range listed {
		assert.Contains(t, endpointKeys, k, "docs/suites.md lists endpoint key %s, which the loader does not take", k)
	}
}

// Every link between the README and the pages of docs/ leads somewhere:
// the file exists, and so does the heading its #anchor names (as GitHub
// makes anchors of headings).
func TestDocsLinksResolve(t *testing.T) {
	pages := docFiles(t)
	slug := func(heading string) string {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	anchors := map[string]map[string]bool{}
	for file, doc := range pages {
		anchors[file] = map[string]bool{}
		for _, h := range regexp.MustCompile(`(?m)^#+ (.*)$`).FindAllStringSubmatch(doc, -1) {
			anchors[file][slug(h[1])] = true
		}
	}
	checked := 0
	for file, doc := range pages {
		for _, m := range regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(doc, -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(file), path)))
			}
			checked++
			if _, ok := pages[dest]; !ok {
				_, err := os.Stat(filepath.Join("..", dest))
				assert.NoError(t, err, "%s links to %s, which does not exist", file, target)
				continue
			}
			if anchor != "" {
				assert.True(t, anchors[dest][anchor], "%s links to %s: %s has no such heading", file, target, dest)
			}
		}
	}
	assert.Greater(t, checked, 30, "links found")
}

// The faults and downgrades docs/hostile-peers.md lists are the ones
// ParseFaults and ParseDowngrade take, all of them.
func TestDocsFaultsAreTheRealOnes(t *testing.T) {
	data, err := os.ReadFile("../docs/hostile-peers.md")
	require.NoError(t, err)
	doc := string(data)
	table := regexp.MustCompile(`(?s)\| side \| faults \|\n\|[-|]+\|\n(.*?)\n\n`).FindStringSubmatch(doc)
	require.NotNil(t, table, "docs/hostile-peers.md: the faults table")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z-]+)(?:=STEP)?`").FindAllStringSubmatch(table[1], -1) {
		listed[m[1]] = true
	}
	names, _, _ := strings.Cut(sim.FaultNames(), " (STEP")
	for _, f := range strings.Split(names, ", ") {
		f, _, _ = strings.Cut(f, "=")
		assert.True(t, listed[f], "docs/hostile-peers.md: fault %s is not in the table", f)
		delete(listed, f)
	}
	for _, step := range []string{"stream", "starttls", "sasl", "dialback", "dialback-verify"} {
		delete(listed, step) // the steps of silent-at and close-at
	}
	for f := range listed {
		_, err := sim.ParseFaults(f)
		assert.NoError(t, err, "docs/hostile-peers.md lists %s, which is no fault", f)
	}
	for _, d := range sim.Downgrades {
		assert.Contains(t, doc, "`"+string(d)+"`", "docs/hostile-peers.md: the downgrade %s", d)
	}
}

// The "always" rows of docs/real-servers.md's mapping from server
// options to settings are what every setting the interop sweeps run
// comes to (realserver.Kind.Sweep, Setting.Policy): each knob a row
// names has that value in all of them, and each knob that has one
// value other than its zero value in all of them is named.
func TestDocsRealServerKnobsAreTheProfiles(t *testing.T) {
	data, err := os.ReadFile("../docs/real-servers.md")
	require.NoError(t, err)
	doc := string(data)
	tokens := func(row string) map[string]string {
		out := map[string]string{}
		for _, m := range regexp.MustCompile("`([a-z_]+)=([A-Za-z0-9.-]+)`").FindAllStringSubmatch(row, -1) {
			out[m[1]] = m[2]
		}
		return out
	}
	anyRow := regexp.MustCompile("(?m)^\\| any \\| (.*)$").FindStringSubmatch(doc)
	require.NotNil(t, anyRow, "docs/real-servers.md: the 'any' row")
	for _, k := range realserver.Kinds() {
		if k.Sweep == nil {
			continue // nothing swept, nothing the interop suites check
		}
		values := map[string]map[string]bool{} // key: the values the swept settings have
		for _, s := range k.Sweep() {
			p := s.Policy()
			add := func(key, v string) {
				if values[key] == nil {
					values[key] = map[string]bool{}
				}
				values[key][v] = true
			}
			add("sasl", p.SASL.String())
			for _, kv := range p.Behaviour.Knobs() {
				add(kv.Key, kv.Value)
			}
		}
		// always is what the row must name: every knob with one value,
		// not its zero value, in every swept setting.
		var always []string
		for _, key := range policy.KnobKeys() {
			if vs := values[key]; len(vs) == 1 {
				for v := range vs {
					if v != policy.KnobValues(key)[0] {
						always = append(always, "`"+key+"="+v+"`")
					}
				}
			}
		}
		row := regexp.MustCompile("(?mi)^\\| " + regexp.QuoteMeta(k.Name) + ", always \\| (.*)$").FindStringSubmatch(doc)
		if !assert.NotNil(t, row, "docs/real-servers.md has no '%s, always' row; its swept settings all have %s", k.Name, strings.Join(always, ", ")) {
			continue
		}
		stated := tokens(row[1])
		for key, v := range tokens(anyRow[1]) {
			stated[key] = v
		}
		for key, v := range stated {
			assert.Equal(t, map[string]bool{v: true}, values[key], "docs/real-servers.md: %s always has %s=%s", k.Name, key, v)
		}
		for _, kv := range always {
			key, v, _ := strings.Cut(strings.Trim(kv, "`"), "=")
			assert.Equal(t, v, stated[key], "docs/real-servers.md: '%s, always' does not say %s=%s", k.Name, key, v)
		}
	}
}

// Every negotiation id the docs give as the witness of a behaviour is a
// negotiation of the shipped suites, so that 'xmppneg run SUITE --run ID
// -v' shows it.
func TestDocsNegotiationIDsExist(t *testing.T) {
	ids := map[string]bool{}
	for _, name := range Suites() {
		s, err := Load(name)
		require.NoError(t, err, name)
		for _, c := range s.Cases {
			ids[c.ID] = true
		}
	}
	checked := 0
	for file, doc := range docFiles(t) {
		for _, m := range regexp.MustCompile("`((?:"+strings.Join(Suites(), "|")+")/[^`\\s…]+)`").FindAllStringSubmatch(doc, -1) {
			checked++
			assert.True(t, ids[m[1]], "%s: %s is no negotiation of the shipped suites", file, m[1])
		}
	}
	assert.Greater(t, checked, 20, "negotiation ids found")
}

// The methods, steps and sides docs/concepts.md lists are policy/outcome's,
// in its order, and every condition it names is a known one.
func TestDocsOutcomesAreTheRealOnes(t *testing.T) {
	data, err := os.ReadFile("../docs/concepts.md")
	require.NoError(t, err)
	doc := string(data)
	bullet := func(prefix string) []string {
		m := regexp.MustCompile(`(?s)\n- ` + regexp.QuoteMeta(prefix) + `(.*?)(?:\n- |\n\n)`).FindStringSubmatch(doc)
		require.NotNil(t, m, "docs/concepts.md: the bullet %q", prefix)
		var out []string
		for _, w := range regexp.MustCompile("`([a-z-]+)`").FindAllStringSubmatch(m[1], -1) {
			out = append(out, w[1])
		}
		return out
	}
	ids := func(xs []fmt.Stringer) []string {
		var out []string
		for _, x := range xs {
			out = append(out, x.String())
		}
		return out
	}
	var methods, steps, sides []fmt.Stringer
	for _, m := range outcome.Methods {
		methods = append(methods, m)
	}
	for _, s := range outcome.Steps {
		steps = append(steps, s)
	}
	for _, s := range outcome.Sides {
		sides = append(sides, s)
	}
	assert.Equal(t, ids(methods), bullet("Methods, strongest first:"), "docs/concepts.md: the methods")
	assert.Equal(t, ids(steps), slices.DeleteFunc(bullet("Failure steps, in protocol order:"), func(w string) bool { return w == "during" }), "docs/concepts.md: the steps")
	assert.Equal(t, ids(sides), bullet("Sides that raise a failure:"), "docs/concepts.md: the sides")
	for _, c := range bullet("Conditions:") {
		_, err := outcome.ParseCondition(c)
		assert.NoError(t, err, "docs/concepts.md: condition %s", c)
	}
}

// The README stays the front door: the two quick-start commands first,
// at most 250 lines, everything longer in docs/.
func TestREADMEIsTheFrontDoor(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	readme := string(data)
	lines := strings.Count(readme, "\n")
	assert.LessOrEqual(t, lines, 250, "README.md has %d lines: move the detail to a page of docs/ and link it", lines)
	start := regexp.MustCompile("(?s)^# xmppneg\n\n## Quick start\n\n```sh\nmake run +#[^\n]*\nmake test +#").MatchString(readme)
	assert.True(t, start, "README.md begins with the quick start: make run, then make test")
}

// What docs/architecture.md says makes the comparison worth anything:
// the engine (package sim) never asks the oracle or reads the documented
// tables, and package policy runs nothing (no goroutine, no network).
func TestArchitectureEngineAndOracleStayApart(t *testing.T) {
	fset := token.NewFileSet()
	parse := func(dir string) []*ast.File {
		files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		require.NoError(t, err)
		var out []*ast.File
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, 0)
			require.NoError(t, err)
			out = append(out, af)
		}
		require.NotEmpty(t, out, dir)
		return out
	}
	oracle := map[string]bool{"Predict": true, "Full": true, "Common": true, "Validate": true}
	for _, f := range parse("sim") {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "policy" && oracle[sel.Sel.Name] {
					t.Errorf("%s: the engine uses policy.%s: an endpoint decides from its own settings and its peer only", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
	for _, f := range parse("policy") {
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "net" || strings.HasPrefix(p, "net/") || p == "os/exec" {
				t.Errorf("%s: package policy imports %s: it predicts, it runs nothing", fset.Position(imp.Pos()), p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: package policy starts a goroutine: it predicts, it runs nothing", fset.Position(g.Pos()))
			}
			return true
		})
	}
}
