package sim

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// bareTLS is a TLS server on loopback with nothing of XMPP: the physical
// floor of a secured negotiation.
type bareTLS struct {
	ln     net.Listener
	done   chan struct{}
	client *tls.Config
}

func startBareTLS(tb testing.TB) *bareTLS {
	pki, err := certs.Default()
	if err != nil {
		tb.Fatal(err)
	}
	srvCert, _ := pki.Certificate("b.test", certs.Valid)
	cliCert, _ := pki.Certificate("a.test", certs.Valid)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srvCfg := &tls.Config{Certificates: []tls.Certificate{*srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.Roots()}
	bt := &bareTLS{ln: ln, done: make(chan struct{}),
		client: &tls.Config{Certificates: []tls.Certificate{*cliCert}, RootCAs: pki.Roots(), ServerName: "b.test"}}
	go func() {
		defer close(bt.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := tls.Server(c, srvCfg)
				if tc.Handshake() != nil {
					return
				}
				// Tell the client the server has checked its certificate too.
				_, _ = tc.Write([]byte{1})
				_, _ = tc.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	return bt
}

// handshake is one TCP connect and TLS 1.3 handshake with both
// certificates, until both sides have finished.
func (bt *bareTLS) handshake(tb testing.TB) {
	c, err := net.Dial("tcp", bt.ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tc := tls.Client(c, bt.client)
	if err := tc.Handshake(); err != nil {
		tb.Fatal(err)
	}
	// In TLS 1.3 the client finishes first; the floor includes the
	// server's check of the client certificate.
	if _, err := tc.Read(make([]byte, 1)); err != nil {
		tb.Fatal(err)
	}
	tc.Close()
}

func (bt *bareTLS) close() {
	bt.ln.Close()
	<-bt.done
}

// run measures f serially or in parallel.
func run(b *testing.B, parallel bool, f func()) {
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			f()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f()
		}
	})
}

// BenchmarkBareTLSHandshake is the physical floor of a secured
// negotiation: a TCP connect and a TLS 1.3 handshake in which both sides
// present and check a certificate, with nothing of XMPP.
func BenchmarkBareTLSHandshake(b *testing.B) {
	bt := startBareTLS(b)
	defer bt.close()
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) { run(b, mode == "parallel", func() { bt.handshake(b) }) })
	}
}

// BenchmarkNegotiate measures whole negotiations, both sides included,
// ping round trip and stream close too. Their ratios to
// BenchmarkBareTLSHandshake, both warmed up and from the same run, are
// what `make bench` prints (cmd/benchratio, medians of 5 runs).
func BenchmarkNegotiate(b *testing.B) {
	for _, tc := range []struct {
		method     outcome.Method
		init, recv string
	}{
		{outcome.SASLOverTLS, "tls=Required,sasl=Required,dialback=false", "tls=Required,sasl=Required,dialback=false"},
		{outcome.TLSDialback, "tls=Required,sasl=NotSupported,dialback=true", "tls=Required,sasl=NotSupported,dialback=true"},
		{outcome.TCPDialback, "tls=NotSupported,sasl=NotSupported,dialback=true", "tls=NotSupported,sasl=NotSupported,dialback=true"},
	} {
		b.Run(tc.method.String(), func(b *testing.B) {
			n := NewNetwork()
			start := func(domain, spec string) *Endpoint {
				s, _ := policy.ParseSpec(spec)
				e, err := NewEndpoint(Config{Domain: domain, Settings: s, Net: n})
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Start(); err != nil {
					b.Fatal(err)
				}
				return e
			}
			a, r := start("a.test", tc.init), start("b.test", tc.recv)
			defer a.Close()
			defer r.Close()
			negotiate := func() {
				res := a.Initiate(context.Background(), "b.test")
				if res.Outcome.Method != tc.method {
					b.Fatalf("got %s: %s", res.Outcome, res.Explain())
				}
			}
			for _, mode := range []string{"serial", "parallel"} {
				b.Run(mode, func(b *testing.B) {
					run(b, mode == "parallel", negotiate)
				})
			}
		})
	}
}
