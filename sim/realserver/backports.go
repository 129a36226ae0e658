package realserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BackportsEnv names the directory where install-backports.sh (run by
// make deps) unpacked the bookworm-backports generation of the servers:
// Prosody 13 and ejabberd 24 beside the system's Prosody 0.12 and
// ejabberd 23.01. Unset, it is xmppneg/backports under the user's cache
// directory, where the script puts it by default.
const BackportsEnv = "XMPPNEG_BACKPORTS"

// backportsPrefix is the directory install-backports.sh fills.
func backportsPrefix() string {
	if p := os.Getenv(BackportsEnv); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "xmppneg-backports") // never used: Require fails first
	}
	return filepath.Join(dir, "xmppneg", "backports")
}

// backportsRoot is the unpacked file tree (./usr/bin/prosody, …).
func backportsRoot() string { return filepath.Join(backportsPrefix(), "root") }

// prosody13Launcher is Prosody 13's launcher script, whose CFG_* lines
// the installer pointed into the prefix; it runs with the system's
// lua5.4 and Lua libraries.
func prosody13Launcher() string { return filepath.Join(backportsRoot(), "usr", "bin", "prosody") }

// ejabberdLibs returns the ERL_LIBS of ejabberd 23.01 (the system's) or
// 24 (the prefix's ejabberd application and its newer libraries, which
// come before the system's older ones on the code path; Erlang/OTP
// itself is the system's 25.2).
func ejabberdLibs(backports bool) (string, error) {
	if !backports {
		libs, _ := filepath.Glob("/usr/lib/*/ejabberd-*")
		if len(libs) == 0 {
			return "", fmt.Errorf("ejabberd: %w", ErrNotInstalled)
		}
		return filepath.Dir(libs[0]), nil
	}
	root := backportsRoot()
	apps, _ := filepath.Glob(filepath.Join(root, "usr", "lib", "*", "ejabberd-*", "ebin"))
	if len(apps) == 0 {
		return "", fmt.Errorf("ejabberd-24: %w in %s", ErrNotInstalled, root)
	}
	return strings.Join([]string{filepath.Dir(filepath.Dir(apps[0])), filepath.Join(root, "usr", "lib", "erlang", "lib")}, ":"), nil
}

// requireBackports checks that install-backports.sh has unpacked what
// the kind needs.
func requireBackports(server string) error {
	var missing bool
	switch server {
	case "prosody-13":
		_, err := os.Stat(prosody13Launcher())
		missing = err != nil
		if m, _ := filepath.Glob("/usr/lib/*/lua/5.4/lunbound.so"); len(m) == 0 {
			return fmt.Errorf("%s: %w: run 'make deps' as root, or: apt-get install -y lua-unbound", server, ErrNotInstalled)
		}
	case "ejabberd-24":
		if _, err := ejabberdLibs(true); err != nil {
			missing = true
		}
	}
	if _, err := os.Stat("/usr/bin/lua5.4"); err != nil && server == "prosody-13" {
		return fmt.Errorf("%s: %w: run 'make deps' as root, or: apt-get install -y lua5.4 lua-expat lua-filesystem lua-sec lua-socket lua-bitop lua-unbound", server, ErrNotInstalled)
	}
	if _, err := os.Stat("/usr/bin/erl"); err != nil && server == "ejabberd-24" {
		return fmt.Errorf("%s: %w: run 'make deps' as root, or: apt-get install -y ejabberd (for Erlang/OTP and its libraries)", server, ErrNotInstalled)
	}
	if missing {
		return fmt.Errorf("%s: %w: run 'make deps', or sim/realserver/install-backports.sh (bookworm-backports unpacked into %s)", server, ErrNotInstalled, backportsPrefix())
	}
	return nil
}
