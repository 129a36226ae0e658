package sim

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"xmppneg/certs"
	"xmppneg/policy"
)

// BenchmarkBareTLSHandshake is the physical floor of a secured
// negotiation: a TCP connect and a TLS 1.3 handshake in which both sides
// present and check a certificate, with nothing of XMPP, until both sides
// have finished.
func BenchmarkBareTLSHandshake(b *testing.B) {
	pki, err := certs.Default()
	if err != nil {
		b.Fatal(err)
	}
	srvCert, _ := pki.Certificate("b.test", certs.Valid)
	cliCert, _ := pki.Certificate("a.test", certs.Valid)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	srvCfg := &tls.Config{Certificates: []tls.Certificate{*srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.Roots()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
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
	cliCfg := &tls.Config{Certificates: []tls.Certificate{*cliCert}, RootCAs: pki.Roots(), ServerName: "b.test"}
	handshake := func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(c, cliCfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		// In TLS 1.3 the client finishes first; the floor includes the
		// server's check of the client certificate.
		if _, err := tc.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		tc.Close()
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			handshake()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				handshake()
			}
		})
	})
	ln.Close()
	<-done
}

// BenchmarkNegotiate measures whole negotiations, both sides included,
// ping round trip and stream close too.
func BenchmarkNegotiate(b *testing.B) {
	for _, tc := range []struct {
		method     policy.Method
		init, recv string
	}{
		{policy.SASLOverTLS, "tls=Required,sasl=Required,dialback=false", "tls=Required,sasl=Required,dialback=false"},
		{policy.TLSDialback, "tls=Required,sasl=NotSupported,dialback=true", "tls=Required,sasl=NotSupported,dialback=true"},
		{policy.TCPDialback, "tls=NotSupported,sasl=NotSupported,dialback=true", "tls=NotSupported,sasl=NotSupported,dialback=true"},
	} {
		b.Run(string(tc.method), func(b *testing.B) {
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
			run := func() {
				res := a.Initiate(context.Background(), "b.test")
				if res.Outcome != string(tc.method) {
					b.Fatalf("got %s: %s", res.Outcome, res.Explain())
				}
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					run()
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						run()
					}
				})
			})
		})
	}
}
