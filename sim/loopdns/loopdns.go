// Package loopdns is a DNS responder on loopback that answers, for the
// harness's domains, the records an XMPP server looks up to reach a peer:
// SRV _xmpp-server._tcp.DOMAIN pointing at a loopback port, and A records.
// Everything is served with TTL 0 so that servers never cache a port
// that changes between tests; every other name gets NXDOMAIN, so that a
// server pointed at it never reaches beyond the machine.
package loopdns

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Server answers DNS queries over UDP on a loopback address.
type Server struct {
	srv  *dns.Server
	conn net.PacketConn

	mu      sync.Mutex
	records map[string]target   // by fully qualified domain, lower case
	srvRecs map[string][]SRV    // by owner name (_xmpp-server._tcp.DOMAIN.), set with SetSRV
	hosts   map[string][]net.IP // A records set with SetHost
	queries []string
}

// SRV is one SRV record: Target "." says the service is not offered.
type SRV struct {
	Target           string
	Port             uint16
	Priority, Weight uint16
}

type target struct {
	ip   net.IP
	port uint16
}

// Start listens on addr (such as "127.0.0.1:0") and serves until Close.
func Start(addr string) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loopdns: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("loopdns: %s is not a loopback address", addr)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("loopdns: %w", err)
	}
	s := &Server{conn: pc, records: map[string]target{}, srvRecs: map[string][]SRV{}, hosts: map[string][]net.IP{}}
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { close(started) }}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		return nil, fmt.Errorf("loopdns: %w", err)
	}
	return s, nil
}

// Addr returns the address the responder listens on.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Port returns the UDP port the responder listens on.
func (s *Server) Port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// Close stops the responder.
func (s *Server) Close() error { return s.srv.Shutdown() }

// Set publishes domain at addr (a loopback host:port): SRV
// _xmpp-server._tcp.domain with that port and the IP as target, and A
// domain with that IP.
func (s *Server) Set(domain, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("loopdns: %w", err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return fmt.Errorf("loopdns: %s is not an IPv4 loopback address", host)
	}
	var p uint16
	if _, err := fmt.Sscan(port, &p); err != nil {
		return fmt.Errorf("loopdns: bad port %q", port)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(strings.ToLower(domain))] = target{ip: ip.To4(), port: p}
	return nil
}

// SetSRV publishes the SRV records of service (such as
// "_xmpps-server._tcp") for domain, replacing what Set published for that
// name; no records removes them.
func (s *Server) SetSRV(service, domain string, recs ...SRV) {
	name := dns.Fqdn(strings.ToLower(service + "." + domain))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(recs) == 0 {
		delete(s.srvRecs, name)
		return
	}
	s.srvRecs[name] = append([]SRV{}, recs...)
}

// SetHost publishes A records: host at ips, loopback IPv4 addresses (a
// domain's DNS may list many, as a hostile one does).
func (s *Server) SetHost(host string, ips ...net.IP) error {
	var v4 []net.IP
	for _, ip := range ips {
		if ip.To4() == nil || !ip.IsLoopback() {
			return fmt.Errorf("loopdns: %s is not an IPv4 loopback address", ip)
		}
		v4 = append(v4, ip.To4())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[dns.Fqdn(strings.ToLower(host))] = v4
	return nil
}

// Queries returns the questions asked so far, as "TYPE name".
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.queries...)
}

// Resolve returns the address published for domain, for the harness's
// own use of the same records.
func (s *Server) Resolve(domain string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.records[dns.Fqdn(strings.ToLower(domain))]
	if !ok {
		return "", false
	}
	return net.JoinHostPort(t.ip.String(), fmt.Sprint(t.port)), true
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.Rcode = dns.RcodeNameError
	s.mu.Lock()
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		s.queries = append(s.queries, dns.TypeToString[q.Qtype]+" "+name)
		if recs, ok := s.srvRecs[name]; ok && q.Qtype == dns.TypeSRV {
			m.Rcode = dns.RcodeSuccess
			for _, r := range recs {
				m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
					Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: dns.Fqdn(r.Target)})
			}
			continue
		}
		if ips, ok := s.hosts[name]; ok && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) {
			m.Rcode = dns.RcodeSuccess
			for _, ip := range ips {
				if q.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: ip})
				}
			}
			continue
		}
		switch {
		case q.Qtype == dns.TypeSRV && strings.HasPrefix(name, "_xmpp-server._tcp."):
			d := strings.TrimPrefix(name, "_xmpp-server._tcp.")
			if t, ok := s.records[d]; ok {
				m.Rcode = dns.RcodeSuccess
				// The target is the IP literal: ejabberd resolves SRV targets
				// with the C library, which would ask the system's DNS
				// server for a name; an address it parses without asking.
				target := t.ip.String() + "."
				m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
					Priority: 0, Weight: 0, Port: t.port, Target: target})
				m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: t.ip})
			}
		case q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA:
			t, ok := s.records[name]
			if !ok {
				// An SRV target written as an IP literal.
				if ip := net.ParseIP(strings.TrimSuffix(name, ".")); ip != nil && ip.IsLoopback() {
					t, ok = target{ip: ip.To4()}, ip.To4() != nil
				}
			}
			if ok {
				m.Rcode = dns.RcodeSuccess // AAAA: no data, but the name exists
				if q.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: t.ip})
				}
			}
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}
