package realserver_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/policy/serverconf"
	"xmppneg/sim/realserver"
)

// The configurations the launcher writes for each setting of the
// interop sweeps (and without a certificate) are read by serverconf —
// what 'xmppneg explain' and config= use for an operator's own file — as
// the very settings the launcher says they are: the interop suites,
// which run those files, thereby check the reading of real files too.
func TestLauncherConfigsReadAsTheirSettings(t *testing.T) {
	const domain = "launcher.test"
	touch := func(t *testing.T, path string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		require.NoError(t, os.WriteFile(path, []byte("-"), 0o600))
	}
	read := func(t *testing.T, file string, server serverconf.Server) *serverconf.Host {
		c, err := serverconf.Load(file, serverconf.Options{Server: server})
		require.NoError(t, err)
		for _, h := range c.Hosts {
			if h.Name == domain || h.Kind == "*" {
				return h
			}
		}
		t.Fatalf("%s: no host %s among %d", file, domain, len(c.Hosts))
		return nil
	}
	for _, k := range realserver.Kinds() {
		settings := k.Sweep()
		missing, err := k.Parse(map[string]string{"cert": string(certs.Missing)})
		require.NoError(t, err)
		settings = append(settings, missing)
		for _, s := range settings {
			t.Run(k.Name+"/"+s.ID(), func(t *testing.T) {
				dir := t.TempDir()
				var h *serverconf.Host
				switch n := s.(type) {
				case realserver.ProsodySettings:
					if n.Cert != certs.Missing {
						touch(t, filepath.Join(dir, "certs", domain+".crt"))
						touch(t, filepath.Join(dir, "certs", domain+".key"))
					}
					file := filepath.Join(dir, "prosody.cfg.lua")
					require.NoError(t, os.WriteFile(file, []byte(realserver.ProsodyConfigText(dir, domain, n)), 0o600))
					h = read(t, file, serverconf.Prosody)
				case realserver.EjabberdSettings:
					file := filepath.Join(dir, "ejabberd.yml")
					text := realserver.EjabberdConfigText(dir, []realserver.EjabberdHost{{Domain: domain, Settings: n}})
					require.NoError(t, os.WriteFile(file, []byte(text), 0o600))
					h = read(t, file, serverconf.Ejabberd)
				case realserver.Jabberd2Settings:
					pem := ""
					if n.PEMFile && n.Cert != certs.Missing {
						pem = filepath.Join(dir, "certs", domain+".pem")
						touch(t, pem)
					}
					file := filepath.Join(dir, "s2s.xml")
					require.NoError(t, os.WriteFile(file, []byte(realserver.Jabberd2S2SText(dir, n, pem)), 0o600))
					h = read(t, file, serverconf.Jabberd2)
				default:
					t.Fatalf("a setting of %T", s)
				}
				// The file says nothing of the certificate's state, only
				// whether there is one: a valid one is read.
				want := s.Policy()
				if want.Cert != certs.Missing {
					want.Cert = certs.Valid
				}
				got := h.Settings
				want.Profile, got.Profile = "", ""
				if k.Suite == "bookworm-backports" {
					// serverconf reads Prosody 13's and ejabberd 24's files
					// with the older generation's behaviour (their knobs of
					// XEP-0288/0478/0440 and the new alerts are not read
					// from files yet): the settings proper must still agree.
					assert.Equal(t, want.Policy, got.Policy, "the launcher's %s config for %s, read back", k.Name, s)
					assert.Equal(t, want.Cert, got.Cert, "the launcher's %s config for %s, read back", k.Name, s)
					return
				}
				assert.Equal(t, want.String(), got.String(), "the launcher's %s config for %s, read back", k.Name, s)
			})
		}
	}
}
