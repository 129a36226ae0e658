package loopdns

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func query(t *testing.T, s *Server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, s.Addr())
	require.NoError(t, err)
	return r
}

func TestAnswersSRVAndA(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Set("Harness.test", "127.0.0.1:15270"))

	r := query(t, s, "_xmpp-server._tcp.harness.test.", dns.TypeSRV)
	require.Equal(t, dns.RcodeSuccess, r.Rcode)
	require.Len(t, r.Answer, 1)
	srv := r.Answer[0].(*dns.SRV)
	assert.Equal(t, uint16(15270), srv.Port)
	assert.Equal(t, "127.0.0.1.", srv.Target)
	assert.Zero(t, srv.Hdr.Ttl, "TTL 0: servers must not cache ports that change between tests")

	r = query(t, s, "harness.test.", dns.TypeA)
	require.Len(t, r.Answer, 1)
	assert.Equal(t, "127.0.0.1", r.Answer[0].(*dns.A).A.String())

	r = query(t, s, "127.0.0.1.", dns.TypeA)
	require.Len(t, r.Answer, 1, "the SRV target resolves too")

	r = query(t, s, "harness.test.", dns.TypeAAAA)
	assert.Equal(t, dns.RcodeSuccess, r.Rcode)
	assert.Empty(t, r.Answer)

	for _, q := range []struct {
		name string
		typ  uint16
	}{{"_xmpps-server._tcp.harness.test.", dns.TypeSRV}, {"example.com.", dns.TypeA}, {"_xmpp-server._tcp.other.test.", dns.TypeSRV}} {
		assert.Equal(t, dns.RcodeNameError, query(t, s, q.name, q.typ).Rcode, q.name)
	}
	assert.Contains(t, s.Queries(), "SRV _xmpp-server._tcp.harness.test.")
	addr, ok := s.Resolve("harness.test")
	assert.True(t, ok)
	assert.Equal(t, "127.0.0.1:15270", addr)
}

func TestRefusesNonLoopback(t *testing.T) {
	_, err := Start("0.0.0.0:0")
	assert.ErrorContains(t, err, "not a loopback address")
	s, err := Start("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	assert.Error(t, s.Set("a.test", "10.0.0.1:5269"))
}
