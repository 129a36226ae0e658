// Package resolve finds where a server-to-server peer listens, as a real
// XMPP server does (RFC 6120 §3.2, RFC 2782, XEP-0368): the SRV records
// _xmpps-server._tcp (direct TLS) and _xmpp-server._tcp (STARTTLS) of
// the domain, merged and ordered by priority and weight; a single "."
// target means the service is not offered; without SRV records, the
// domain's own addresses on port 5269. Every query and its answer is
// kept, so that a report can say what was asked and what came back.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultPort is the s2s port of RFC 6120 §3.2.2's fallback.
const DefaultPort = 5269

// Services are the SRV services of server-to-server XMPP.
const (
	ServiceDirectTLS = "_xmpps-server._tcp" // XEP-0368
	ServiceStartTLS  = "_xmpp-server._tcp"  // RFC 6120 §3.2.1
)

// Target is one place to connect to.
type Target struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	DirectTLS bool   `json:"direct_tls"` // TLS at once (XEP-0368), not STARTTLS
	Priority  uint16 `json:"priority"`
	Weight    uint16 `json:"weight"`
	// Via says where the target came from: an SRV service, or the
	// fallback to the domain's own addresses.
	Via string `json:"via"`
}

func (t Target) String() string {
	how := "STARTTLS"
	if t.DirectTLS {
		how = "direct TLS"
	}
	return fmt.Sprintf("%s:%d (%s, from %s)", t.Host, t.Port, how, t.Via)
}

// Query is one DNS question and what came back.
type Query struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Answer string `json:"answer"` // the records, or the response code
}

// Result is where a domain's s2s service is.
type Result struct {
	Domain  string   `json:"domain"`
	Targets []Target `json:"targets"`
	// NotOffered is set when a service's only SRV target is ".": the
	// domain says it takes no s2s connections there.
	NotOffered []string `json:"not_offered,omitempty"`
	Queries    []Query  `json:"queries"`
	// Dropped counts the targets beyond MaxTargets, which are not tried.
	Dropped int `json:"dropped,omitempty"`
	// DroppedAddrs counts the addresses beyond MaxAddrs (or repeated)
	// that Addresses found and left out; targets left unresolved once
	// MaxAddrs were had are not counted, nor asked about.
	DroppedAddrs int `json:"dropped_addresses,omitempty"`
}

// MaxTargets bounds the targets a lookup returns, in their order: a
// domain's DNS (which anyone may write) could otherwise list enough to
// hold a connection attempt for as many deadlines.
const MaxTargets = 16

// MaxAddrs bounds the addresses tried for one domain, all its targets
// together: behind 16 targets a domain's DNS can put hundreds of A
// records each, and one unauthenticated db:result would make us open
// thousands of connections to addresses of the sender's choosing.
const MaxAddrs = 16

// MaxAnswerRecords bounds the records of one answer kept in a Query's
// text.
const MaxAnswerRecords = 16

// Resolver asks a DNS server.
type Resolver struct {
	// Server is the DNS server, host:port; empty means the first
	// nameserver of /etc/resolv.conf.
	Server string
	// Timeout bounds each query (default 2 s).
	Timeout time.Duration
	// Rand orders SRV records of equal priority by weight (RFC 2782);
	// nil means a random source. Tests fix it.
	Rand *rand.Rand
}

// ErrNoService is returned when every service the domain publishes
// says, with a "." target, that it is not offered.
var ErrNoService = errors.New("the domain says it offers no s2s service (SRV target \".\")")

func (r *Resolver) server() (string, error) {
	if r.Server != "" {
		return r.Server, nil
	}
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(cfg.Servers) == 0 {
		return "", fmt.Errorf("no DNS server: give one (--resolver HOST:PORT): %v", err)
	}
	return net.JoinHostPort(cfg.Servers[0], cfg.Port), nil
}

// exchange asks one question.
func (r *Resolver) exchange(ctx context.Context, res *Result, name string, qtype uint16) ([]dns.RR, error) {
	server, err := r.server()
	if err != nil {
		return nil, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: timeout, UDPSize: 4096}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in, _, err := c.ExchangeContext(qctx, m, server)
	q := Query{Name: dns.Fqdn(name), Type: dns.TypeToString[qtype]}
	if err == nil && in.Truncated {
		// The answer did not fit in UDP: ask again over TCP (RFC 7766
		// §5), rather than read the part that came as all there is.
		tc := &dns.Client{Net: "tcp", Timeout: timeout}
		in, _, err = tc.ExchangeContext(qctx, m, server)
		q.Type += " (over TCP: the UDP answer was truncated)"
	}
	if err != nil {
		q.Answer = "no answer: " + err.Error()
		if res != nil {
			res.Queries = append(res.Queries, q)
		}
		return nil, fmt.Errorf("asking %s for %s %s: %w", server, q.Type, q.Name, err)
	}
	if in.Rcode != dns.RcodeSuccess {
		q.Answer = dns.RcodeToString[in.Rcode]
	} else {
		var parts []string
		for i, rr := range in.Answer {
			if i == MaxAnswerRecords {
				// The answer is the domain's DNS's to make long: a
				// report line stays short.
				parts = append(parts, fmt.Sprintf("and %d more records", len(in.Answer)-i))
				break
			}
			parts = append(parts, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
		q.Answer = strings.Join(parts, "; ")
		if q.Answer == "" {
			q.Answer = "no records"
		}
	}
	if res != nil {
		res.Queries = append(res.Queries, q)
	}
	return in.Answer, nil
}

// Lookup finds the targets of domain's s2s service.
func (r *Resolver) Lookup(ctx context.Context, domain string) (*Result, error) {
	res := &Result{Domain: domain, Targets: []Target{}, Queries: []Query{}}
	var srvs []*dns.SRV
	direct := map[*dns.SRV]bool{}
	via := map[*dns.SRV]string{}
	published := 0
	for _, svc := range []string{ServiceDirectTLS, ServiceStartTLS} {
		rrs, err := r.exchange(ctx, res, svc+"."+domain, dns.TypeSRV)
		if err != nil {
			return res, err
		}
		var got []*dns.SRV
		for _, rr := range rrs {
			if s, ok := rr.(*dns.SRV); ok {
				got = append(got, s)
			}
		}
		if len(got) == 0 {
			continue
		}
		published++
		if len(got) == 1 && got[0].Target == "." {
			res.NotOffered = append(res.NotOffered, svc)
			continue
		}
		for _, s := range got {
			direct[s] = svc == ServiceDirectTLS
			via[s] = svc + " SRV"
			srvs = append(srvs, s)
		}
	}
	if len(srvs) == 0 && published > 0 {
		return res, ErrNoService
	}
	if len(srvs) == 0 {
		// RFC 6120 §3.2.2: no SRV records, the domain itself on 5269.
		res.Targets = append(res.Targets, Target{Host: domain, Port: DefaultPort, Via: "fallback to the domain's A/AAAA records"})
		return res, nil
	}
	for _, s := range Order(srvs, r.Rand) {
		if len(res.Targets) == MaxTargets {
			res.Dropped++
			continue
		}
		res.Targets = append(res.Targets, Target{Host: strings.TrimSuffix(s.Target, "."), Port: int(s.Port), DirectTLS: direct[s],
			Priority: s.Priority, Weight: s.Weight, Via: via[s]})
	}
	return res, nil
}

// Address is one place to connect to: an IP address and port, and the
// target it came from. A target whose addresses could not be had is
// listed once with Err set and no Addr.
type Address struct {
	Target Target
	Addr   string // IP:port
	Err    error
}

// Addresses resolves the targets of res in their order (RFC 2782's, as
// Lookup gives them) into at most MaxAddrs addresses, each IP:port once;
// once it has MaxAddrs it asks about no further target. What it leaves
// out is counted in res.DroppedAddrs.
func (r *Resolver) Addresses(ctx context.Context, res *Result) []Address {
	var out []Address
	seen := map[string]bool{}
	n := 0
	for _, t := range res.Targets {
		if n == MaxAddrs {
			break
		}
		ips, err := r.Addrs(ctx, res, t.Host)
		if err != nil {
			out = append(out, Address{Target: t, Err: err})
			if ctx.Err() != nil {
				break
			}
			continue
		}
		for _, ip := range ips {
			a := net.JoinHostPort(ip.String(), strconv.Itoa(t.Port))
			if seen[a] || n == MaxAddrs {
				res.DroppedAddrs++
				continue
			}
			seen[a] = true
			n++
			out = append(out, Address{Target: t, Addr: a})
		}
	}
	return out
}

// Addrs returns the IP addresses of host (A, then AAAA records); an IP
// literal is its own address.
func (r *Resolver) Addrs(ctx context.Context, res *Result, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	var ips []net.IP
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.exchange(ctx, res, host, t)
		if err != nil {
			return nil, err
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				ips = append(ips, a.A)
			case *dns.AAAA:
				ips = append(ips, a.AAAA)
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s has no A or AAAA record", host)
	}
	return ips, nil
}

// Order sorts SRV records as RFC 2782 says: by priority, lowest first,
// and within a priority at random weighted by weight, zero weights
// having a small chance of going first.
func Order(srvs []*dns.SRV, rnd *rand.Rand) []*dns.SRV {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	byPrio := map[uint16][]*dns.SRV{}
	var prios []uint16
	for _, s := range srvs {
		if _, ok := byPrio[s.Priority]; !ok {
			prios = append(prios, s.Priority)
		}
		byPrio[s.Priority] = append(byPrio[s.Priority], s)
	}
	sort.Slice(prios, func(i, j int) bool { return prios[i] < prios[j] })
	var out []*dns.SRV
	for _, p := range prios {
		group := append([]*dns.SRV{}, byPrio[p]...)
		// Zero weights first, as the RFC's selection does.
		sort.SliceStable(group, func(i, j int) bool { return group[i].Weight == 0 && group[j].Weight != 0 })
		for len(group) > 0 {
			sum := 0
			for _, s := range group {
				sum += int(s.Weight)
			}
			pick := 0
			if sum > 0 {
				n, run := rnd.IntN(sum+1), 0
				for i, s := range group {
					run += int(s.Weight)
					if run >= n {
						pick = i
						break
					}
				}
			}
			out = append(out, group[pick])
			group = append(group[:pick], group[pick+1:]...)
		}
	}
	return out
}
