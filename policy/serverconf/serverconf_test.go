package serverconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/policy"
)

// hostWant is what a host of a file must come to.
type hostWant struct {
	knobs    map[string]string
	profile  string
	warnings []string // codes that must be among its warnings
}

func kv(pairs ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return m
}

var prosodyKnobs = func(req, secure, dialback, cert string) map[string]string {
	return kv("s2s_require_encryption", req, "s2s_secure_auth", secure, "dialback", dialback, "cert", cert, "s2s_direct_tls", "false")
}

// The example inventory and Debian's shipped files, each with what it
// must come to: the launcher's knobs per host (whose settings the
// interop suites check against the real servers), the closest profile,
// the warnings an operator needs, or the server's own refusal.
var fileCases = []struct {
	file         string
	hosts        map[string]hostWant
	fileWarnings []string
	refused      string // text of the server's reason
}{
	{file: "testdata/debian/prosody/prosody.cfg.lua", hosts: map[string]hostWant{
		"localhost": {prosodyKnobs("true", "true", "true", "missing"), "prosody-0.12-secure", []string{"no-certificate", "secure-auth"}}}},
	{file: "testdata/debian/ejabberd/ejabberd.yml", hosts: map[string]hostWant{
		"localhost": {kv("s2s_use_starttls", "required", "dialback", "true", "cert", "valid"), "ejabberd-23-example", []string{"eku-client"}}}},
	{file: "testdata/debian/jabberd2/s2s.xml", fileWarnings: []string{"no-local-id"}, hosts: map[string]hostWant{
		"*": {kv("pemfile", "false", "require_tls", "false", "cert", "missing"), "jabberd2-2.7", []string{"no-certificate", "no-external"}}}},

	{file: "../../scenarios/examples/prosody/prosody-default.cfg.lua", hosts: map[string]hostWant{
		"example.org": {prosodyKnobs("true", "false", "true", "valid"), "prosody-0.12", []string{"certificate-assumed"}}}},
	{file: "../../scenarios/examples/prosody/prosody-secure-auth.cfg.lua", hosts: map[string]hostWant{
		"example.org": {prosodyKnobs("true", "true", "true", "valid"), "prosody-0.12-secure", []string{"secure-auth"}}}},
	{file: "../../scenarios/examples/prosody/prosody-no-dialback.cfg.lua", hosts: map[string]hostWant{
		"example.org": {prosodyKnobs("true", "false", "false", "valid"), "prosody-0.12", []string{"no-dialback"}}}},
	{file: "../../scenarios/examples/prosody/prosody-host-secure-auth.cfg.lua", hosts: map[string]hostWant{
		"example.org": {prosodyKnobs("true", "false", "true", "valid"), "prosody-0.12", []string{"host-option-ignored"}}}},
	{file: "../../scenarios/examples/prosody/prosody-unquoted.cfg.lua", fileWarnings: []string{"unrecognized-value", "option-unset"}, hosts: map[string]hostWant{
		"example.org": {prosodyKnobs("true", "false", "true", "valid"), "prosody-0.12", nil}}},
	{file: "../../scenarios/examples/prosody/prosody-no-cert.cfg.lua", hosts: map[string]hostWant{
		"new.example.org": {prosodyKnobs("true", "false", "true", "missing"), "prosody-0.12", []string{"no-certificate"}}}},
	{file: "../../scenarios/examples/prosody/prosody-include.cfg.lua", hosts: map[string]hostWant{
		"example.org":            {prosodyKnobs("true", "false", "true", "valid"), "prosody-0.12", nil},
		"conference.example.org": {prosodyKnobs("true", "false", "true", "valid"), "prosody-0.12", nil},
		"chat.example.net":       {prosodyKnobs("true", "false", "false", "valid"), "prosody-0.12", []string{"no-dialback"}}}},
	{file: "../../scenarios/examples/prosody/prosody-refused.cfg.lua",
		refused: `Component "example.org" clashes with previously defined VirtualHost "example.org", for services use a sub-domain like conference.example.org`},

	{file: "../../scenarios/examples/ejabberd/ejabberd-optional.yml", hosts: map[string]hostWant{
		"example.net": {kv("s2s_use_starttls", "optional", "dialback", "true", "cert", "valid"), "ejabberd-23", []string{"eku-client"}}}},
	{file: "../../scenarios/examples/ejabberd/ejabberd-required-trusted.yml", hosts: map[string]hostWant{
		"example.net": {kv("s2s_use_starttls", "required", "dialback", "false", "cert", "valid"), "ejabberd-23-example", []string{"required-trusted", "no-dialback"}}}},
	{file: "../../scenarios/examples/ejabberd/ejabberd-default-starttls.yml", hosts: map[string]hostWant{
		"example.net": {kv("s2s_use_starttls", "false", "dialback", "true", "cert", "valid"), "ejabberd-23", []string{"no-starttls"}}}},
	{file: "../../scenarios/examples/ejabberd/ejabberd-hosts.yml", hosts: map[string]hostWant{
		"example.net":        {kv("s2s_use_starttls", "required", "dialback", "false", "cert", "valid"), "ejabberd-23-example", []string{"no-dialback"}},
		"legacy.example.net": {kv("s2s_use_starttls", "optional", "dialback", "true", "cert", "valid"), "ejabberd-23", nil}}},
	{file: "../../scenarios/examples/ejabberd/ejabberd-macros.yml", fileWarnings: []string{"relative-include"}, hosts: map[string]hostWant{
		"example.net": {kv("s2s_use_starttls", "required", "dialback", "true", "cert", "valid"), "ejabberd-23-example", nil}}},
	{file: "../../scenarios/examples/ejabberd/ejabberd-typo.yml", refused: "Unknown option: s2s_use_startls. Did you mean s2s_use_starttls?"},

	{file: "../../scenarios/examples/jabberd2/s2s-pemfile.xml", hosts: map[string]hostWant{
		"*": {kv("pemfile", "true", "require_tls", "false", "cert", "valid"), "jabberd2-2.7", []string{"no-external"}}}},
	{file: "../../scenarios/examples/jabberd2/s2s-require-tls.xml", hosts: map[string]hostWant{
		"*": {kv("pemfile", "true", "require_tls", "true", "cert", "valid"), "jabberd2-2.7", nil}}},
	{file: "../../scenarios/examples/jabberd2/s2s-require-tls-yes.xml", fileWarnings: []string{"atoi"}, hosts: map[string]hostWant{
		"*": {kv("pemfile", "true", "require_tls", "false", "cert", "valid"), "jabberd2-2.7", nil}}},
	{file: "../../scenarios/examples/jabberd2/s2s-no-pemfile.xml", hosts: map[string]hostWant{
		"*": {kv("pemfile", "false", "require_tls", "false", "cert", "missing"), "jabberd2-2.7", []string{"no-certificate"}}}},
	{file: "../../scenarios/examples/jabberd2/s2s-local-ids.xml", hosts: map[string]hostWant{
		"example.com":      {kv("pemfile", "true", "require_tls", "true", "cert", "valid"), "jabberd2-2.7", nil},
		"chat.example.com": {kv("pemfile", "true", "require_tls", "true", "cert", "valid"), "jabberd2-2.7", nil}}},
	{file: "../../scenarios/examples/jabberd2/s2s-no-srv-lookup.xml", fileWarnings: []string{"no-srv-lookup"}, hosts: map[string]hostWant{
		"*": {kv("pemfile", "true", "require_tls", "false", "cert", "valid"), "jabberd2-2.7", []string{"no-external"}}}},
	{file: "../../scenarios/examples/jabberd2/s2s-refused.xml", refused: "config_expand: Have no 'pki' defined"},
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

func TestFiles(t *testing.T) {
	for _, tc := range fileCases {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			c, err := Load(tc.file, Options{})
			if tc.refused != "" {
				var ref *RefusedError
				require.ErrorAs(t, err, &ref)
				assert.Equal(t, tc.refused, ref.Reason)
				assert.NotZero(t, ref.Source.Line, "the refusal names its line")
				return
			}
			require.NoError(t, err)
			for _, w := range tc.fileWarnings {
				assert.Contains(t, codes(c.Warnings), w)
			}
			require.Len(t, c.Hosts, len(tc.hosts))
			for _, h := range c.Hosts {
				want, ok := tc.hosts[h.Name]
				require.True(t, ok, "unexpected host %s", h.Name)
				assert.Equal(t, want.knobs, h.Knobs, h.Name)
				p, _ := Closest(h.Settings)
				assert.Equal(t, want.profile, p.Name, h.Name)
				for _, w := range want.warnings {
					assert.Contains(t, codes(h.Warnings), w, h.Name)
				}
				// The settings are the launcher's for these knobs, and a
				// spec that reads back to the same settings.
				st, err := h.kind.Parse(h.Knobs)
				require.NoError(t, err)
				assert.Equal(t, st.Policy(), h.Settings)
			}
		})
	}
}

// Every change a fix may propose, applied to a copy of the file and read
// again, gives the knob it promises and changes nothing else.
func TestChangesApplied(t *testing.T) {
	n := 0
	for _, tc := range fileCases {
		if tc.refused != "" {
			continue
		}
		c, err := Load(tc.file, Options{})
		require.NoError(t, err)
		for _, h := range c.Hosts {
			for _, ch := range h.Changes {
				dir := t.TempDir()
				src := filepath.Dir(tc.file)
				copyTree(t, src, dir)
				edited := filepath.Join(dir, mustRel(t, src, ch.Edit.File))
				data, err := os.ReadFile(edited)
				require.NoError(t, err)
				out, err := ch.Edit.Apply(data)
				require.NoError(t, err, "%s %s", tc.file, ch.Edit)
				require.NoError(t, os.WriteFile(edited, out, 0o644))
				c2, err := Load(filepath.Join(dir, mustRel(t, src, tc.file)), Options{})
				require.NoError(t, err, "%s after %s", tc.file, ch.Edit)
				h2, err := c2.Host(h.Name)
				require.NoError(t, err)
				assert.Equal(t, ch.Apply(h.Knobs), h2.Knobs, "%s: %s", tc.file, ch.Edit)
				n++
			}
		}
	}
	assert.Greater(t, n, 20, "changes tried")
}

func mustRel(t *testing.T, base, path string) string {
	r, err := filepath.Rel(base, path)
	require.NoError(t, err)
	return r
}

func copyTree(t *testing.T, from, to string) {
	require.NoError(t, filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}))
}

// write puts files (name → content) in a new directory and returns the
// path of the first name given.
func write(t *testing.T, files ...string) string {
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		p := filepath.Join(dir, files[i])
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(files[i+1]), 0o644))
	}
	return filepath.Join(dir, files[0])
}

const cert = "\n\tssl = { certificate = \"/x.crt\"; key = \"/x.key\" }\n"

func TestProsodySemantics(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		version string
		host    string
		knobs   map[string]string // a subset
		warn    string            // a warning code of the file or the host
		refused string            // substring of Prosody's reason
		err     string            // substring of another error
	}{
		{name: "global before the first VirtualHost", files: []string{"p.cfg.lua", "s2s_secure_auth = true\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("s2s_secure_auth", "true")},
		{name: "after a VirtualHost an option is the host's", files: []string{"p.cfg.lua", "modules_enabled = {\"dialback\"; \"tls\"; \"saslauth\"}\nVirtualHost \"a.example\"" + cert + "modules_disabled = {\"dialback\"}\nVirtualHost \"b.example\"" + cert},
			host: "a.example", knobs: kv("dialback", "false")},
		{name: "the next host is not affected", files: []string{"p.cfg.lua", "modules_enabled = {\"dialback\"; \"tls\"; \"saslauth\"}\nVirtualHost \"a.example\"" + cert + "modules_disabled = {\"dialback\"}\nVirtualHost \"b.example\"" + cert},
			host: "b.example", knobs: kv("dialback", "true")},
		{name: "table form", files: []string{"p.cfg.lua", "modules_enabled = {\"dialback\"; \"tls\"; \"saslauth\"}\nVirtualHost \"a.example\" { modules_disabled = {\"dialback\"}; ssl = { certificate = \"/x\" } }\ns2s_secure_auth = true"},
			host: "a.example", knobs: kv("dialback", "false", "s2s_secure_auth", "true", "cert", "valid")},
		{name: "an included file starts in the global section", files: []string{"p.cfg.lua", "VirtualHost \"a.example\"" + cert + "Include \"more.lua\"", "more.lua", "s2s_secure_auth = true\n"},
			host: "a.example", knobs: kv("s2s_secure_auth", "true")},
		{name: "glob includes, hidden files left out", files: []string{"p.cfg.lua", "Include \"conf.d/*.cfg.lua\"", "conf.d/a.cfg.lua", "VirtualHost \"a.example\"" + cert, "conf.d/.b.cfg.lua", "VirtualHost \"b.example\"" + cert, "conf.d/c.txt", "VirtualHost \"c.example\""},
			host: "a.example", knobs: kv("cert", "valid")},
		{name: "a component inherits only tls, saslauth, dialback…", files: []string{"p.cfg.lua", "modules_enabled = {\"dialback\"; \"tls\"; \"saslauth\"; \"limits\"}\nComponent \"muc.example\" \"muc\"" + cert},
			host: "muc.example", knobs: kv("dialback", "true")},
		{name: "duplicate option", files: []string{"p.cfg.lua", "s2s_secure_auth = true\ns2s_secure_auth = false\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("s2s_secure_auth", "false"), warn: "duplicate-option"},
		{name: "a value Prosody does not understand", files: []string{"p.cfg.lua", "s2s_require_encryption = \"yes\"\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("s2s_require_encryption", "false"), warn: "not-understood"},
		{name: "secure domains", files: []string{"p.cfg.lua", "s2s_secure_domains = { \"b.example\" }\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("s2s_secure_auth", "false")},
		{name: "direct TLS ports", files: []string{"p.cfg.lua", "s2s_direct_tls_ports = { 5270 }\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("s2s_direct_tls", "true")},
		{name: "string methods and concatenation work", files: []string{"p.cfg.lua", "local d = (\"A.Example\"):lower()\nVirtualHost(d)\n\tssl = { certificate = \"/etc/\" .. d .. \".crt\" }"},
			host: "a.example", knobs: kv("cert", "valid")},
		{name: "Prosody 13: options read back, append", version: "13", files: []string{"p.cfg.lua", "modules_enabled = { \"tls\"; \"saslauth\" }\nmodules_enabled:append { \"dialback\" }\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("dialback", "true")},
		{name: "Prosody 13: call syntax appends", version: "13", files: []string{"p.cfg.lua", "modules_enabled = { \"tls\"; \"saslauth\" }\nmodules_enabled { \"dialback\" }\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("dialback", "true")},
		{name: "Prosody 0.12 cannot read options back", files: []string{"p.cfg.lua", "modules_enabled = { \"tls\" }\nmodules_enabled:append { \"dialback\" }\nVirtualHost \"a.example\"" + cert},
			refused: "attempt to index"},
		{name: "RunScript is noted, not run", files: []string{"p.cfg.lua", "RunScript \"x.lua\"\nVirtualHost \"a.example\"" + cert},
			host: "a.example", knobs: kv("s2s_secure_auth", "false")},
		{name: "syntax error", files: []string{"p.cfg.lua", "VirtualHost \"a.example\"\n  s2s_secure_auth = = true\n"}, refused: "Lua syntax error"},
		{name: "Lua 5.4 syntax is not read", files: []string{"p.cfg.lua", "x = 7 // 2\nVirtualHost \"a.example\"\n"}, err: "Lua 5.2–5.4 syntax"},
		{name: "include missing", files: []string{"p.cfg.lua", "Include \"nothere.lua\""}, refused: "Error loading included"},
		{name: "include cycle", files: []string{"p.cfg.lua", "Include \"b.lua\"", "b.lua", "Include \"p.cfg.lua\""}, refused: "includes itself"},
		{name: "VirtualHost with a module name", files: []string{"p.cfg.lua", "VirtualHost \"a.example\" \"muc\""}, refused: "VirtualHost entries do not accept a module name"},
		{name: "host without a name", files: []string{"p.cfg.lua", "VirtualHost()"}, refused: "Host must have a name"},
		{name: "os is not evaluated", files: []string{"p.cfg.lua", "os.execute(\"touch /tmp/pwned\")"}, err: "sandbox"},
		{name: "io is not evaluated", files: []string{"p.cfg.lua", "x = io.open(\"/etc/passwd\"):read(\"*a\")"}, err: "sandbox"},
		{name: "require is not evaluated", files: []string{"p.cfg.lua", "require \"socket\""}, err: "sandbox"},
		{name: "metatables are not reachable", files: []string{"p.cfg.lua", "setmetatable({}, {})"}, err: "sandbox"},
		{name: "Lua patterns are not evaluated", files: []string{"p.cfg.lua", "x = (\"aaa\"):gsub(\"a\", \"b\")"}, refused: "not evaluated by xmppneg's sandbox"},
		{name: "an endless loop is stopped", files: []string{"p.cfg.lua", "while true do end"}, err: "ran for more than"},
		{name: "memory is bounded", files: []string{"p.cfg.lua", "local t = {} for i = 1, 1e9 do t[i] = i end"}, err: "not evaluated further"},
		{name: "string.rep is bounded", files: []string{"p.cfg.lua", "x = string.rep(\"x\", 1e9)"}, refused: "string.rep"},
		{name: "string.format widths are bounded", files: []string{"p.cfg.lua", "x = string.format(\"%999999999d\", 1)"}, refused: "width or precision too long"},
		{name: "doubling strings is bounded", files: []string{"p.cfg.lua", "local s = \"x\" for i = 1, 40 do s = s .. s end"}, err: "not evaluated further"},
		{name: "deep nesting is refused before parsing", files: []string{"p.cfg.lua", "x = " + strings.Repeat("{", 1000) + strings.Repeat("}", 1000)}, err: "nested more than"},
		{name: "long concatenation chains are refused before parsing", files: []string{"p.cfg.lua", "x = 'a'" + strings.Repeat("..'a'", 1000)}, err: "'..'"},
		{name: "recursion is bounded", files: []string{"p.cfg.lua", "local function f() return f() + 1 end f()"}, refused: "stack overflow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := Load(write(t, tc.files...), Options{Version: tc.version})
			assert.Less(t, time.Since(start), 10*time.Second)
			switch {
			case tc.refused != "":
				var ref *RefusedError
				require.ErrorAs(t, err, &ref)
				assert.Contains(t, ref.Reason, tc.refused)
				return
			case tc.err != "":
				require.Error(t, err)
				var ref *RefusedError
				assert.False(t, errors.As(err, &ref), "not the server's refusal: %v", err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			h, err := c.Host(tc.host)
			require.NoError(t, err)
			for k, v := range tc.knobs {
				assert.Equal(t, v, h.Knobs[k], k)
			}
			if tc.warn != "" {
				assert.Contains(t, append(codes(c.Warnings), codes(h.Warnings)...), tc.warn)
			}
		})
	}
}

func TestProsodyExceptions(t *testing.T) {
	c, err := Load("../../scenarios/examples/prosody/prosody-secure-auth.cfg.lua", Options{})
	require.NoError(t, err)
	h := c.Hosts[0]
	assert.Equal(t, "true", h.Knobs["s2s_secure_auth"])
	assert.Equal(t, "false", h.KnobsFor("legacy.example")["s2s_secure_auth"])
	assert.Equal(t, "true", h.KnobsFor("other.example")["s2s_secure_auth"])
	assert.NotEqual(t, h.SettingsFor("legacy.example"), h.SettingsFor("other.example"))
}

func TestIncludesStayInTheDirectory(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.lua"), []byte("s2s_secure_auth = true"), 0o644))
	p := write(t, "p.cfg.lua", "Include \"link.lua\"\nVirtualHost \"a.example\"")
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.lua"), filepath.Join(filepath.Dir(p), "link.lua")))
	_, err := Load(p, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside the directory")

	p = write(t, "p.cfg.lua", "Include \""+filepath.Join(outside, "secret.lua")+"\"")
	_, err = Load(p, Options{})
	assert.ErrorIs(t, err, errOutside)

	p = write(t, "p.cfg.lua", "Include \"d.lua\"")
	require.NoError(t, os.Mkdir(filepath.Join(filepath.Dir(p), "d.lua"), 0o755))
	_, err = Load(p, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")

	big := write(t, "p.cfg.lua", strings.Repeat("-- padding\n", maxLuaBytes/10))
	_, err = Load(big, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than")
}

func TestEjabberdSemantics(t *testing.T) {
	const base = "hosts: [a.example]\ncertfiles: [/x.pem]\n"
	tests := []struct {
		name    string
		files   []string
		host    string
		knobs   map[string]string
		warn    string
		refused string
		err     string
	}{
		{name: "default: no STARTTLS", files: []string{"e.yml", base + "modules: {mod_s2s_dialback: {}}"}, host: "a.example", knobs: kv("s2s_use_starttls", "false", "dialback", "true")},
		{name: "yes is true, which is optional", files: []string{"e.yml", base + "s2s_use_starttls: yes"}, host: "a.example", knobs: kv("s2s_use_starttls", "optional"), warn: "starttls-true"},
		{name: "a bad value", files: []string{"e.yml", base + "s2s_use_starttls: mandatory"}, refused: "Invalid value of option s2s_use_starttls"},
		{name: "duplicate scalar", files: []string{"e.yml", base + "s2s_use_starttls: optional\ns2s_use_starttls: required"}, refused: "Duplicated option: s2s_use_starttls"},
		{name: "duplicate maps are joined", files: []string{"e.yml", base + "modules: {mod_ping: {}}\nmodules: {mod_s2s_dialback: {}}"}, host: "a.example", knobs: kv("dialback", "true")},
		{name: "macros", files: []string{"e.yml", base + "define_macro: {TLS: REQ, REQ: required}\ns2s_use_starttls: TLS"}, host: "a.example", knobs: kv("s2s_use_starttls", "required")},
		{name: "circular macros", files: []string{"e.yml", base + "define_macro: {A: B, B: A}\ns2s_use_starttls: A"}, refused: "Circularly defined macro"},
		{name: "macro names are capitals", files: []string{"e.yml", base + "define_macro: {tls: required}"}, refused: "define_macro"},
		{name: "required_trusted in host_config drops only that host's dialback", files: []string{"e.yml", "hosts: [a.example, b.example]\ncertfiles: [/x.pem]\nhost_config:\n  a.example:\n    s2s_use_starttls: required_trusted\n    modules: {mod_s2s_dialback: {}}\nmodules: {mod_s2s_dialback: {}}\n"},
			host: "a.example", knobs: kv("s2s_use_starttls", "required", "dialback", "false"), warn: "required-trusted"},
		{name: "…and the other host keeps it", files: []string{"e.yml", "hosts: [a.example, b.example]\ncertfiles: [/x.pem]\nhost_config:\n  a.example:\n    s2s_use_starttls: required_trusted\n    modules: {mod_s2s_dialback: {}}\nmodules: {mod_s2s_dialback: {}}\n"},
			host: "b.example", knobs: kv("s2s_use_starttls", "false", "dialback", "true")},
		{name: "required_trusted in host_config leaves the global modules alone", files: []string{"e.yml", "hosts: [a.example]\ncertfiles: [/x.pem]\nhost_config:\n  a.example:\n    s2s_use_starttls: required_trusted\nmodules: {mod_s2s_dialback: {}}\n"},
			host: "a.example", knobs: kv("s2s_use_starttls", "required", "dialback", "true")},
		{name: "a global option in host_config", files: []string{"e.yml", base + "host_config: {a.example: {certfiles: [/y.pem]}}"}, refused: "not allowed in this context"},
		{name: "append_host_config needs lists", files: []string{"e.yml", base + "append_host_config: {a.example: {s2s_use_starttls: required}}"}, refused: "Cannot merge value"},
		{name: "hosts is required", files: []string{"e.yml", "s2s_use_starttls: required"}, refused: "Missing required option: hosts"},
		{name: "s2s_certfile joins certfiles", files: []string{"e.yml", "hosts: [a.example]\ns2s_certfile: /x.pem"}, host: "a.example", knobs: kv("cert", "valid"), warn: "deprecated"},
		{name: "no certfiles", files: []string{"e.yml", "hosts: [a.example]"}, host: "a.example", knobs: kv("cert", "missing"), warn: "no-certificate"},
		{name: "include with disallow", files: []string{"e.yml", base + "include_config_file: {more.yml: {disallow: [s2s_use_starttls]}}", "more.yml", "s2s_use_starttls: required\nmodules: {mod_s2s_dialback: {}}"},
			host: "a.example", knobs: kv("s2s_use_starttls", "false", "dialback", "true")},
		{name: "circular include", files: []string{"e.yml", base + "include_config_file: b.yml", "b.yml", "include_config_file: e.yml"}, refused: "Circularly included"},
		{name: "missing include", files: []string{"e.yml", base + "include_config_file: nothere.yml"}, refused: "Failed to read YAML file"},
		{name: "YAML error", files: []string{"e.yml", "hosts: [a.example\n"}, refused: "Failed to read YAML"},
		{name: "aliases are bounded", files: []string{"e.yml", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ndefine_macro: {M: x}\nhosts: [*f]\n"}, err: "YAML nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(write(t, tc.files...), Options{})
			switch {
			case tc.refused != "":
				var ref *RefusedError
				require.ErrorAs(t, err, &ref)
				assert.Contains(t, ref.Reason, tc.refused)
				return
			case tc.err != "":
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			h, err := c.Host(tc.host)
			require.NoError(t, err)
			for k, v := range tc.knobs {
				assert.Equal(t, v, h.Knobs[k], k)
			}
			if tc.warn != "" {
				assert.Contains(t, append(codes(c.Warnings), codes(h.Warnings)...), tc.warn)
			}
		})
	}
}

func TestJabberd2Semantics(t *testing.T) {
	tests := []struct {
		name, xml string
		knobs     map[string]string
		refused   string
		err       string
	}{
		{name: "empty element is 1", xml: "<s2s><local><pemfile>/x.pem</pemfile></local><security><require_tls/></security></s2s>", knobs: kv("require_tls", "true", "pemfile", "true")},
		{name: "atoi", xml: "<s2s><local><pemfile>/x.pem</pemfile></local><security><require_tls> 2 apples</require_tls></security></s2s>", knobs: kv("require_tls", "true")},
		{name: "zero", xml: "<s2s><local><pemfile>/x.pem</pemfile></local><security><require_tls>0</require_tls></security></s2s>", knobs: kv("require_tls", "false")},
		{name: "expansion", xml: "<s2s><dir>/etc/j</dir><local><pemfile>${dir}/x.pem</pemfile></local></s2s>", knobs: kv("pemfile", "true")},
		{name: "} mismatch", xml: "<s2s><local><pemfile>${dir</pemfile></local></s2s>", refused: "} mismatch"},
		{name: "parse error", xml: "<s2s>\n<local>\n</s2s>", refused: "parse error at line 3"},
		{name: "DTDs are not read", xml: "<!DOCTYPE s2s [<!ENTITY a 'b'>]><s2s/>", err: "DTD"},
		{name: "bad local id", xml: "<s2s><local><id>not a domain!</id></local></s2s>", refused: "cannot stringprep id"},
		{name: "deep nesting", xml: strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100), err: "nested more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(write(t, "s2s.xml", tc.xml), Options{})
			switch {
			case tc.refused != "":
				var ref *RefusedError
				require.ErrorAs(t, err, &ref)
				assert.Contains(t, ref.Reason, tc.refused)
				return
			case tc.err != "":
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			for k, v := range tc.knobs {
				assert.Equal(t, v, c.Hosts[0].Knobs[k], k)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	_, h, err := Resolve("../../scenarios/examples/prosody/prosody-include.cfg.lua#Example.ORG", Options{})
	require.NoError(t, err)
	assert.Equal(t, "example.org", h.Name)
	_, _, err = Resolve("../../scenarios/examples/prosody/prosody-include.cfg.lua", Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "name one as FILE#HOST")
	_, h, err = Resolve("../../scenarios/examples/jabberd2/s2s-pemfile.xml#any.example", Options{})
	require.NoError(t, err)
	assert.Equal(t, "any.example", h.Name)
	_, _, err = Resolve("../../scenarios/examples/prosody/prosody-default.cfg.lua#nothere.example", Options{})
	assert.ErrorContains(t, err, "has no host")
}

func TestAttribution(t *testing.T) {
	c, err := Load("testdata/debian/prosody/prosody.cfg.lua", Options{})
	require.NoError(t, err)
	a := c.Hosts[0].Attribution()
	assert.Equal(t, "testdata/debian/prosody/prosody.cfg.lua:110", a["refuse"])
	assert.Contains(t, a["tls"], "prosody.cfg.lua:110")
	assert.Contains(t, a["tls"], "default: s2s_require_encryption=true")
	assert.Equal(t, "testdata/debian/prosody/prosody.cfg.lua:35", a["dialback"])
	assert.Contains(t, a["eku"], "observed")
}

// config=FILE#HOST is a spec key wherever a spec is read (negotiate,
// probe --policy, serve --policy, partners --partner, YAML).
func TestSpecKeyConfig(t *testing.T) {
	s, err := policy.ParseSpec("config=../../scenarios/examples/ejabberd/ejabberd-optional.yml#example.net,cert=no-client-auth")
	require.NoError(t, err)
	_, h, err := Resolve("../../scenarios/examples/ejabberd/ejabberd-optional.yml", Options{})
	require.NoError(t, err)
	want := h.Settings
	want.Cert = "no-client-auth"
	assert.Equal(t, want, s)
	base := policy.DefaultSettings()
	s, err = policy.ParseSpecFrom(base, "config=../../scenarios/examples/ejabberd/ejabberd-optional.yml")
	require.NoError(t, err)
	assert.Equal(t, h.Settings, s, "config replaces the base, as profile does")
	_, err = policy.ParseSpec("profile=xmppneg,config=../../scenarios/examples/ejabberd/ejabberd-optional.yml")
	assert.ErrorContains(t, err, "profile and config both")
	_, err = policy.ParseSpec("config=../../scenarios/examples/ejabberd/ejabberd-typo.yml")
	assert.ErrorContains(t, err, "config: ")
	assert.ErrorContains(t, err, "ejabberd would refuse")
}

// docs/own-server.md promises five or more example files per server, each in
// the table above.
func TestExampleInventory(t *testing.T) {
	listed := map[string]bool{}
	for _, tc := range fileCases {
		listed[filepath.Clean(tc.file)] = true
	}
	for _, dir := range []string{"prosody", "ejabberd", "jabberd2"} {
		files, err := filepath.Glob(filepath.Join("../../scenarios/examples", dir, "*.[lyx]*"))
		require.NoError(t, err)
		n := 0
		for _, f := range files {
			if f == filepath.Clean("../../scenarios/examples/ejabberd/ejabberd-s2s.yml") {
				continue // included by ejabberd-macros.yml
			}
			assert.True(t, listed[f], "%s has no expectation in fileCases", f)
			n++
		}
		assert.GreaterOrEqual(t, n, 5, dir)
	}
}

// A configuration file that is a FIFO is refused at once: opening it to
// read used to wait for a writer.
func TestFIFOConfigurationIsRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "prosody.cfg.lua")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() { _, err := Load(fifo, Options{}); done <- err }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "not a regular file")
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO as a configuration hangs")
	}
}
