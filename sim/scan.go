package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// VersionScan is what one TLS handshake, limited to one version, found
// at a server's s2s port.
type VersionScan struct {
	Version   string `json:"version"`   // "TLS 1.2"
	Connected bool   `json:"connected"` // the TCP connection was made
	Accepted  bool   `json:"accepted"`  // the handshake completed
	Cipher    string `json:"cipher,omitempty"`
	// Error says why the handshake did not complete, or why TLS was not
	// reached (no STARTTLS offered, the connection refused).
	Error string `json:"error,omitempty"`
	// TimedOut is set when the deadline ended the scan: the server did
	// not refuse the version, nor say it offers no STARTTLS; it did not
	// answer in time.
	TimedOut bool `json:"timed_out,omitempty"`
	// Chain is the certificates the server sent.
	Chain []*x509.Certificate `json:"-"`
	// Features is what the server offered before TLS (STARTTLS targets).
	Features string `json:"-"`
}

// ScanALPN is offered, after xmpp-server, by every ClientHello of a TLS
// version scan: an endpoint of the harness (xmppneg serve) tells the
// probe's one-version handshakes from negotiations by it and logs them
// as the scans they are. Servers pick xmpp-server or ignore ALPN.
const ScanALPN = "x-xmppneg-tls-version-scan"

// scanLimit bounds what a scan reads before TLS: a stream header and
// its features are a few hundred bytes.
const scanLimit = 64 << 10

// ScanTLS connects to addr as from and tries one TLS handshake offering
// only version (a crypto/tls version number), on a direct TLS port or
// after STARTTLS, with SNI domain. It checks nothing: the chain is
// returned for the caller to judge. Every step has the deadline of ctx
// or timeout, whichever comes first.
func ScanTLS(ctx context.Context, addr, domain, from string, directTLS bool, version uint16, timeout time.Duration) VersionScan {
	s := VersionScan{Version: tls.VersionName(version)}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		s.fail(ctx, err)
		return s
	}
	defer raw.Close()
	s.Connected = true
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if !directTLS {
		if s.Features, err = startTLSForScan(raw, domain, from); err != nil {
			s.fail(ctx, err)
			return s
		}
	}
	cfg := &tls.Config{ServerName: domain, InsecureSkipVerify: true, MinVersion: version, MaxVersion: version,
		NextProtos: []string{alpnXMPPServer, ScanALPN}}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.fail(ctx, err)
		if a, ok := remoteAlert(err); ok && a == alertProtocolVersion {
			s.Error = "refused: the server does not speak " + s.Version
		}
		return s
	}
	cs := tc.ConnectionState()
	s.Accepted, s.Cipher, s.Chain = true, tls.CipherSuiteName(cs.CipherSuite), cs.PeerCertificates
	return s
}

// fail records err, saying so when it is the deadline's.
func (s *VersionScan) fail(ctx context.Context, err error) {
	s.Error = err.Error()
	if isTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.TimedOut = true
		s.Error = "timed out: " + s.Error
	}
}

// startTLSForScan opens a stream, reads the features and asks for TLS.
func startTLSForScan(raw net.Conn, domain, from string) (features string, err error) {
	if _, err := io.WriteString(raw, headerXML(from, domain, "")); err != nil {
		return "", err
	}
	dec := xml.NewDecoder(io.LimitReader(raw, scanLimit))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("reading the stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Space != nsStreams || se.Name.Local != "stream" {
				return "", fmt.Errorf("expected a stream header, got <%s/>", se.Name.Local)
			}
			break
		}
	}
	el, err := readElement(dec, DefaultLimits)
	if err != nil {
		return "", fmt.Errorf("reading the stream's features: %w", err)
	}
	if !el.is(nsStreams, "features") {
		return "", fmt.Errorf("expected stream features, got %s", el)
	}
	f := parseFeatures(el)
	if !f.StartTLS {
		return f.String(), errors.New("no STARTTLS offered")
	}
	if _, err := io.WriteString(raw, "<starttls xmlns='"+nsTLS+"'/>"); err != nil {
		return f.String(), err
	}
	if el, err = readElement(dec, DefaultLimits); err != nil {
		return f.String(), fmt.Errorf("waiting for <proceed/>: %w", err)
	}
	if !el.is(nsTLS, "proceed") {
		return f.String(), fmt.Errorf("STARTTLS answered with %s", el)
	}
	return f.String(), nil
}
