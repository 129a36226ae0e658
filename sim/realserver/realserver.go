// Package realserver starts private instances of real XMPP servers
// (Prosody 0.12, ejabberd 23.01 and jabberd2 2.7, from Debian's packages,
// and Prosody 13 and ejabberd 24.12 from bookworm-backports, unpacked
// beside them by install-backports.sh) as peers of
// the harness: in a temporary directory, with a configuration generated
// from the server's own knobs, certificates from package certs, loopback
// ports only and name resolution through a loopdns responder, so that
// the server finds the harness's endpoints for dialback and outbound
// streams without touching any system file.
//
// Each server is a Kind (its knobs, the sweep of settings the interop
// suites run) whose Settings start a Server and say what they mean in
// the harness's vocabulary; the scenarios package runs negotiations with
// them like with any other endpoint.
//
// A Kind's knobs (Keys) are not behaviour knobs (policy.Behaviour): they
// are the server's own configuration options in its own words, written
// into the file it reads, and a knob left out is that server's default,
// not the harness's. Setting.Policy maps them one way onto
// policy.Settings, which the oracle predicts from.
package realserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotInstalled is wrapped by the errors of servers that are missing.
var ErrNotInstalled = errors.New("not installed")

// NoRealServersEnv is the environment variable that keeps every real
// server from starting. The test binaries set it under go test -short,
// the hermetic inner loop, so that a test that would start one by
// mistake fails instead of slowing the loop down; a test that needs one
// skips itself in short mode.
const NoRealServersEnv = "XMPPNEG_NO_REAL_SERVERS"

// ErrDisabled is wrapped by the errors of starts refused under
// NoRealServersEnv.
var ErrDisabled = errors.New("real servers are disabled")

// Require checks that the programs and files of a server are installed,
// and says how to install them when they are not.
func Require(server string) error {
	if os.Getenv(NoRealServersEnv) != "" {
		return fmt.Errorf("%s: %w here (%s is set, as go test -short does)", server, ErrDisabled, NoRealServersEnv)
	}
	switch server { // the aliases of the bookworm generation
	case "prosody-0.12":
		server = "prosody"
	case "ejabberd-23":
		server = "ejabberd"
	}
	var missing []string
	switch server {
	case "prosody-13", "ejabberd-24":
		return requireBackports(server)
	case "ejabberd":
		if _, err := exec.LookPath("erl"); err != nil {
			missing = append(missing, "ejabberd")
		} else if m, _ := filepath.Glob("/usr/lib/*/ejabberd-*"); len(m) == 0 {
			missing = append(missing, "ejabberd")
		}
	case "jabberd2":
		for _, b := range []string{"jabberd2-router", "jabberd2-sm", "jabberd2-s2s"} {
			if _, err := os.Stat("/usr/sbin/" + b); err != nil {
				missing = append(missing, "jabberd2")
				break
			}
		}
	case "prosody":
		if _, err := exec.LookPath("prosody"); err != nil {
			missing = append(missing, "prosody")
		}
		if m, _ := filepath.Glob("/usr/lib/*/lua/5.4/lunbound.so"); len(m) == 0 {
			missing = append(missing, "lua-unbound")
		}
	default:
		return fmt.Errorf("realserver: unknown server %q", server)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %w: run 'make deps' as root, or: apt-get install -y %s", server, ErrNotInstalled, strings.Join(missing, " "))
	}
	return nil
}
