package serverconf

import (
	"os"
	"path/filepath"
	"testing"
)

// fuzzLoad writes data as the one file of a configuration and reads it:
// whatever it holds, Load returns (settings or an error), never panics
// and never runs away (the sandbox's bounds).
func fuzzLoad(f *testing.F, name string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, Options{})
		if err != nil {
			return
		}
		for _, h := range c.Hosts {
			_ = h.Settings.String()
			_ = h.Attribution()
		}
	})
}

func FuzzProsody(f *testing.F) {
	b, _ := os.ReadFile("testdata/debian/prosody/prosody.cfg.lua")
	fuzzLoad(f, "prosody.cfg.lua", string(b),
		"VirtualHost \"a.example\"\n\tssl = { certificate = \"/x\" }\ns2s_secure_auth = true",
		"Component \"c.example\" \"muc\" { modules_enabled = { \"dialback\" } }",
		"local x = ('a'):rep(3) .. [[b]] --[==[ c ]==]\nVirtualHost(x)",
		"modules_enabled { \"x\" }", "Include \"*.lua\"")
}

func FuzzEjabberd(f *testing.F) {
	b, _ := os.ReadFile("testdata/debian/ejabberd/ejabberd.yml")
	fuzzLoad(f, "ejabberd.yml", string(b),
		"hosts: [a.example]\ns2s_use_starttls: required_trusted\nmodules: {mod_s2s_dialback: {}}",
		"define_macro: {A: B, B: [x, y]}\nhosts: [A]\nhost_config: {a: {s2s_use_starttls: true}}",
		"a: &a [x, *a]\nhosts: *a", "include_config_file: ejabberd.yml")
}

func FuzzJabberd2(f *testing.F) {
	b, _ := os.ReadFile("testdata/debian/jabberd2/s2s.xml")
	fuzzLoad(f, "s2s.xml", string(b),
		"<s2s><x>${x}</x></s2s>", "<s2s><local><id pemfile='/x'>a.example</id></local><security><require_tls/></security></s2s>")
}

func FuzzLuaShape(f *testing.F) {
	f.Add("x = [==[ ]] ]==] .. 'a\\'b' -- c\nif a then elseif b then end")
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = luaShape(src)
	})
}
