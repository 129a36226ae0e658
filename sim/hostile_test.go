package sim

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of an endpoint facing peers that mean harm (issue 14): what
// serve and probe meet on real networks.

// rawUntil connects to e, sends lines and reads until the reply contains
// want, the peer closes, or 2 s pass. It returns what it read.
func rawUntil(t *testing.T, e *Endpoint, want string, lines ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.Addr(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	for _, l := range lines {
		_, err := c.Write([]byte(l))
		require.NoError(t, err)
	}
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), want) {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return got.String()
}

// A key computed from what anyone knows of the authoritative server (its
// domain: the secret every installation used to derive from it) is
// answered invalid; the key made with its real secret is the control.
func TestForgedDialbackKeyRefused(t *testing.T) {
	w := newWorld(t)
	b := w.endpoint("b.test", "tls=NotSupported,sasl=NotSupported,dialback=true")
	header := strings.Replace(strings.Replace(rawHeader, "from='evil.test'", "from='victim.test'", 1), "'jabber:server'", "'jabber:server' xmlns:db='jabber:server:dialback'", 1)
	verify := func(key string) string {
		return fmt.Sprintf("<db:verify from='victim.test' to='b.test' id='s1'>%s</db:verify>", key)
	}
	forged := DialbackKey("xmppneg dialback secret of b.test", "victim.test", "b.test", "s1")
	got := rawUntil(t, b, "type=", header, verify(forged))
	assert.Contains(t, got, "type='invalid'", got)

	real := DialbackKey(b.secret, "victim.test", "b.test", "s1")
	got = rawUntil(t, b, "type=", header, verify(real))
	assert.Contains(t, got, "type='valid'", got)
}

// Two endpoints made without a secret share one (nodes of a domain in
// this process), and it is long and not made of the domain.
func TestDefaultSecretIsRandomPerProcess(t *testing.T) {
	w := newWorld(t)
	a := w.endpoint("a.test", "")
	b := w.endpoint("b.test", "")
	assert.Equal(t, a.secret, b.secret)
	assert.GreaterOrEqual(t, len(a.secret), 32)
	assert.NotContains(t, a.secret, "a.test")
	c := w.endpoint("c.test", "secret=given")
	assert.Equal(t, "given", c.secret)
}
