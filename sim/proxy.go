package sim

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Downgrade is what a man-in-the-middle proxy removes from the stream
// features the receiving server sends before TLS. It is no endpoint's
// setting (an endpoint decides from its own settings and what it
// receives) but the path's, so a scenario gives it to the case, not to
// an endpoint; the zero Downgrade is no proxy.
type Downgrade string

// The downgrades.
const (
	StripStartTLS   Downgrade = "strip-starttls"   // remove <starttls/>
	StripRequired   Downgrade = "strip-required"   // remove <required/> from <starttls/>
	StripMechanisms Downgrade = "strip-mechanisms" // remove the SASL mechanisms
	StripDialback   Downgrade = "strip-dialback"   // remove the dialback feature
)

// Downgrades lists every Downgrade.
var Downgrades = []Downgrade{StripStartTLS, StripRequired, StripMechanisms, StripDialback}

// ParseDowngrade reads a downgrade name.
func ParseDowngrade(s string) (Downgrade, error) {
	for _, d := range Downgrades {
		if string(d) == s {
			return d, nil
		}
	}
	var names []string
	for _, d := range Downgrades {
		names = append(names, string(d))
	}
	return "", fmt.Errorf("invalid downgrade %q: accepted values are %s", s, strings.Join(names, ", "))
}

var downgradeRE = map[Downgrade]*regexp.Regexp{
	StripStartTLS:   regexp.MustCompile(`<starttls[^>]*?(/>|>.*?</starttls>)`),
	StripRequired:   regexp.MustCompile(`<required\s*/>|<required>\s*</required>`),
	StripMechanisms: regexp.MustCompile(`<mechanisms[^>]*?(/>|>.*?</mechanisms>)`),
	StripDialback:   regexp.MustCompile(`<dialback[^>]*?(/>|>.*?</dialback>)`),
}

// Proxy is a man-in-the-middle on loopback: it relays a connection to its
// target and, until TLS starts, rewrites the features the target sends.
// Inside TLS it can only relay.
type Proxy struct {
	ln     net.Listener
	target string
	mode   Downgrade
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	// Rewrites counts the feature lists it changed.
	rewrites int
}

// StartProxy listens on 127.0.0.1 and relays to target with mode applied.
func StartProxy(target string, mode Downgrade) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sim: proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, mode: mode}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Rewrites returns how many feature lists the proxy changed.
func (p *Proxy) Rewrites() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rewrites
}

// Close stops the proxy and the connections it relays.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.track(in)
		p.track(out)
		tls := make(chan struct{})
		var once sync.Once
		p.wg.Add(2)
		go func() { // initiator → receiver: relayed as it is
			defer p.wg.Done()
			_, _ = io.Copy(out, in)
			out.Close()
		}()
		go func() { // receiver → initiator: features rewritten until <proceed/>
			defer p.wg.Done()
			defer in.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := out.Read(buf)
				if n > 0 {
					chunk := buf[:n]
					select {
					case <-tls:
					default:
						s := string(chunk)
						if strings.Contains(s, "<proceed") {
							once.Do(func() { close(tls) })
						} else if strings.Contains(s, "features") {
							if r := downgradeRE[p.mode].ReplaceAllString(s, ""); r != s {
								p.mu.Lock()
								p.rewrites++
								p.mu.Unlock()
								chunk = []byte(r)
							}
						}
					}
					if _, err := in.Write(chunk); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
