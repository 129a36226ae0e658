package sim

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"xmppneg/certs"
)

// TestRemoteAlertIsTyped pins what remoteAlert relies on in crypto/tls:
// an alert the peer sends arrives as a *net.OpError "remote error" whose
// Err is a uint8 holding the alert's number. Nothing in crypto/tls
// promises it, so a Go release may change it; this test is what says so,
// with the error crypto/tls returned, before refusals start being
// reported as closed connections.
func TestRemoteAlertIsTyped(t *testing.T) {
	pki, err := certs.Default()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Certificate("b.test", certs.Valid)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := pki.Certificate("b.test", certs.Untrusted)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		client, server *tls.Config
		// want is the alert the side that receives it must see; the
		// receiving side is the client when fromServer.
		want       tlsAlert
		fromServer bool
	}{
		{
			name:       "protocol_version from the server",
			client:     &tls.Config{RootCAs: pki.Roots(), ServerName: "b.test", MinVersion: tls.VersionTLS13},
			server:     &tls.Config{Certificates: []tls.Certificate{*leaf}, MaxVersion: tls.VersionTLS12},
			want:       alertProtocolVersion,
			fromServer: true,
		},
		{
			name:   "bad_certificate from the client",
			client: &tls.Config{RootCAs: pki.Roots(), ServerName: "b.test"},
			server: &tls.Config{Certificates: []tls.Certificate{*rogue}},
			want:   42,
		},
		{
			name:   "certificate_required from the server",
			client: &tls.Config{RootCAs: pki.Roots(), ServerName: "b.test", MinVersion: tls.VersionTLS13},
			server: &tls.Config{Certificates: []tls.Certificate{*leaf}, ClientAuth: tls.RequireAnyClientCert},
			want:   116,
			// TLS 1.3: the client's handshake completes before the
			// server refuses; the client reads the alert.
			fromServer: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientErr, serverErr := alertHandshake(t, tc.client, tc.server)
			received, sent := serverErr, clientErr
			if tc.fromServer {
				received, sent = clientErr, serverErr
			}
			got, ok := remoteAlert(received)
			if !ok || got != tc.want {
				t.Fatalf("crypto/tls changed how a received alert is returned: remoteAlert(%s) = %d, %t; want %d, true\n"+
					"read the alert with errors.As if crypto/tls now wraps tls.AlertError, else follow its new type in sim/errors.go",
					describeErr(received), got, ok, tc.want)
			}
			if !tc.want.aboutCertificate() && tc.want != alertProtocolVersion {
				t.Errorf("alert %d is neither about a certificate nor protocol_version", tc.want)
			}
			if a, ok := remoteAlert(sent); ok {
				t.Errorf("the side that sent the alert sees it as received: remoteAlert(%s) = %d", describeErr(sent), a)
			}
		})
	}
	if _, ok := remoteAlert(&net.OpError{Op: "remote error", Err: errors.New("not an alert")}); ok {
		t.Error("a remote error that is not a number was read as an alert")
	}
}

// alertHandshake runs a TLS handshake, then one read on each side (a TLS
// 1.3 client learns of a refusal of its certificate only when it reads),
// over loopback TCP (buffered, as a peer's connection is: an alert is
// written while the other side is still writing its flight) with a
// deadline, and returns each side's first error.
func alertHandshake(t *testing.T, client, server *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, conn := range []net.Conn{c, s} {
		if err := conn.SetDeadline(deadline); err != nil {
			t.Fatal(err)
		}
	}
	run := func(conn *tls.Conn) error {
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			return err
		}
		_, err := conn.Read(make([]byte, 1))
		return err
	}
	done := make(chan error, 1)
	go func() { done <- run(tls.Server(s, server)) }()
	clientErr = run(tls.Client(c, client))
	serverErr = <-done
	return clientErr, serverErr
}

// describeErr names each error of err's chain with its type.
func describeErr(err error) string {
	s := fmt.Sprintf("%T %q", err, err)
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		s += fmt.Sprintf(" → %T %q", e, e)
	}
	if op, ok := err.(*net.OpError); ok && op.Err != nil {
		s += fmt.Sprintf(" (Op %q, Err %T)", op.Op, op.Err)
	}
	return s
}
