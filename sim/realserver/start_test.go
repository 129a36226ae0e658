package realserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"xmppneg/certs"
	"xmppneg/sim/loopdns"
)

// takenFirst makes allocPort hand out a port another program listens on
// first, as happens when one takes it between the choice and the
// server's bind, and returns that port.
func takenFirst(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	taken := ln.Addr().(*net.TCPAddr).Port
	given := false
	allocPort = func() (int, error) {
		if !given {
			given = true
			return taken, nil
		}
		return allocFreePort()
	}
	t.Cleanup(func() { allocPort = allocFreePort })
	return taken
}

// Each server says in its own words that its port is taken; the start
// is then tried again on another port, and the server that comes up
// listens where it says.
func TestTakenPortIsTriedAgain(t *testing.T) {
	t.Parallel()
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	for _, tc := range []struct {
		kind  string
		start func() (Server, error)
	}{
		{"prosody", func() (Server, error) {
			return ProsodySettings{RequireEncryption: true, Dialback: true}.Start("prosody.test", pki, dns.Addr())
		}},
		{"ejabberd", func() (Server, error) {
			return EjabberdSettings{StartTLS: "optional", Dialback: true}.Start("ejabberd.test", pki, dns.Addr())
		}},
		{"jabberd2", func() (Server, error) {
			return Jabberd2Settings{PEMFile: true}.Start("jabberd2.test", pki, dns.Addr())
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			requireInstalled(t, tc.kind)
			taken := takenFirst(t)
			srv, err := tc.start()
			require.NoError(t, err)
			defer srv.Stop()
			assert.NotEqual(t, fmt.Sprintf("127.0.0.1:%d", taken), srv.Addr())
			features := streamFeatures(t, srv.Addr(), srv.Domain())
			assert.Contains(t, features, "starttls", "the server itself answers on its address")
		})
	}
}

// streamFeatures opens an s2s stream to domain at addr and returns what
// the server sent up to the end of its features.
func streamFeatures(t *testing.T, addr, domain string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='probe.test' to='%s' version='1.0'>", domain)
	require.NoError(t, err)
	var got strings.Builder
	r := bufio.NewReader(c)
	for !strings.Contains(got.String(), "</stream:features>") && !strings.Contains(got.String(), "<stream:features/>") {
		b, err := r.ReadByte()
		require.NoError(t, err, "read so far: %s", got.String())
		got.WriteByte(b)
	}
	return got.String()
}

// One ejabberd serves several settings, each as a host of its own
// domain with its own s2s_use_starttls and modules: what each host
// offers is its own setting's, and each sends as itself.
func TestEjabberdHostsShareOneProcess(t *testing.T) {
	t.Parallel()
	requireInstalled(t, "ejabberd")
	pki, err := certs.Default()
	require.NoError(t, err)
	dns, err := loopdns.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer dns.Close()
	srvs, err := StartShared(
		[]Setting{EjabberdSettings{StartTLS: "required", Dialback: false}, EjabberdSettings{StartTLS: "false", Dialback: true}},
		[]string{"required.ejabberd.test", "plain.ejabberd.test"}, pki, dns.Addr())
	require.NoError(t, err)
	require.Len(t, srvs, 2)
	assert.Equal(t, srvs[0].Addr(), srvs[1].Addr(), "one process")
	required := streamFeatures(t, srvs[0].Addr(), "required.ejabberd.test")
	assert.Regexp(t, `<starttls[^>]*>\s*<required/>`, required)
	plain := streamFeatures(t, srvs[1].Addr(), "plain.ejabberd.test")
	assert.NotContains(t, plain, "starttls")
	assert.Contains(t, plain, "urn:xmpp:features:dialback", "mod_s2s_dialback is this host's alone")

	// Stopping one host leaves the other serving; the last stops the
	// process.
	require.NoError(t, srvs[1].Stop())
	assert.Contains(t, streamFeatures(t, srvs[0].Addr(), "required.ejabberd.test"), "starttls")
	require.NoError(t, srvs[0].Stop())
	_, err = net.DialTimeout("tcp", srvs[0].Addr(), time.Second)
	assert.Error(t, err, "the process stopped with its last host")
}

// Two hosts of one process cannot hold a certificate for another name:
// each would present the other's.
func TestEjabberdWrongNameDoesNotShare(t *testing.T) {
	assert.Empty(t, ShareKey(EjabberdSettings{StartTLS: "optional", Cert: certs.WrongName}))
	assert.Equal(t, ShareKey(EjabberdSettings{StartTLS: "optional", Cert: certs.Expired}), ShareKey(EjabberdSettings{StartTLS: "false", Dialback: true}))
	assert.Empty(t, ShareKey(ProsodySettings{Dialback: true}), "Prosody's s2s options are global in 0.12")
	_, err := StartShared([]Setting{EjabberdSettings{StartTLS: "optional"}, EjabberdSettings{StartTLS: "optional", Cert: certs.WrongName}}, []string{"a.test", "b.test"}, nil, "127.0.0.1:53")
	assert.ErrorContains(t, err, "cannot share a process")
}

// What a server says decides a start: the lines waited for, a fatal
// line, its exit, or the deadline — whichever comes first.
func TestProcessSignals(t *testing.T) {
	ready := signal{name: "ready", re: regexp.MustCompile(`^ready on \d+$`)}
	for _, tc := range []struct {
		script, err string
		taken       bool
	}{
		{script: "echo starting; echo ready on 5269; exec sleep 5"},
		{script: "echo 'Failed to open server port 5269 on 127.0.0.1'; exec sleep 5", err: "could not start: Failed to open server port", taken: true},
		{script: "echo bad config; exit 3", err: "exited while starting (exit status 3)"},
		{script: "exec sleep 5", err: "did not say it was ready within 300ms (waiting for: ready)"},
	} {
		dir := t.TempDir()
		p, err := startProcess(dir, "out.log", nil, nil, []signal{ready}, "sh", "-c", tc.script)
		require.NoError(t, err)
		err = p.await("test server", 300*time.Millisecond, "ready")
		if tc.err == "" {
			assert.NoError(t, err, tc.script)
		} else {
			assert.ErrorContains(t, err, tc.err, tc.script)
		}
		assert.Equal(t, tc.taken, err != nil && strings.Contains(fmt.Sprint(err), "Failed to open") && isTaken(err), tc.script)
		p.stop(time.Second)
		if first, ok := strings.CutPrefix(tc.script, "echo "); ok {
			log, _ := os.ReadFile(dir + "/out.log")
			assert.Contains(t, string(log), strings.Trim(strings.SplitN(first, ";", 2)[0], "'"), "the output is kept in the log")
		}
	}
}

func isTaken(err error) bool { return errors.Is(err, errPortTaken) }
