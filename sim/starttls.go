package sim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"encoding/xml"

	"xmppneg/certs"
)

// serverTLS is the receiving side's TLS configuration. It asks for the
// peer's certificate without requiring one (dialback-only peers have
// none) and judges it itself: a strict endpoint aborts the handshake on
// an invalid certificate, a lenient one carries on and only refuses SASL
// EXTERNAL later.
func (s *side) serverTLS() *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil // dialback-only peers have none
			}
			return s.judge(cs, x509.ExtKeyUsageClientAuth)
		},
	}
	if s.ep.cert != nil {
		cfg.Certificates = []tls.Certificate{*s.ep.cert}
	}
	return cfg
}

// judge checks the peer's certificate for its usage and the peer's
// domain, remembers what it found, and aborts the handshake when the
// endpoint is strict and the certificate is bad.
func (s *side) judge(cs tls.ConnectionState, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) > 0 {
		s.peerCert = cs.PeerCertificates[0]
	}
	s.certErr = certs.Check(cs.PeerCertificates, s.ep.roots, s.peer, usage, now())
	if s.certErr != nil && s.ep.cfg.Settings.Strict {
		return s.fail(StepTLSHandshake, "bad-certificate", fmt.Sprintf("%s's certificate rejected: %v", s.peerRole, s.certErr))
	}
	return nil
}

// clientTLS is the initiating side's TLS configuration: it presents its
// certificate (for SASL EXTERNAL) and judges the receiver's, aborting on
// an invalid one when strict.
func (s *side) clientTLS() *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: s.peer,
		// Verification is done below, so that a lenient endpoint can go on
		// with an invalid certificate and the reason is still recorded.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.judge(cs, x509.ExtKeyUsageServerAuth)
		},
	}
	if s.ep.cert != nil {
		cfg.Certificates = []tls.Certificate{*s.ep.cert}
	}
	if s.conn == "verify" {
		// A receiving server opens verify connections to the same
		// authoritative servers again and again; like OpenSSL-based
		// servers it resumes their TLS sessions. The main connection
		// never resumes: each negotiation pays its full handshake.
		cfg.ClientSessionCache = s.ep.verifySessions
	}
	return cfg
}

// receiveStartTLS answers <starttls/> and runs the server handshake.
func (s *side) receiveStartTLS(offered features) (io.ReadWriter, error) {
	s.step = StepStartTLS
	if !offered.StartTLS {
		why := "TLS NotSupported"
		if s.ep.cert == nil {
			why = "no certificate"
		}
		return nil, s.refuse(StepStartTLS, "failure", fmt.Sprintf("%s sent <starttls/> but the %s did not offer it (%s)", s.peerRole, s.role, why),
			"<failure xmlns='"+nsTLS+"'/>", "</stream:stream>")
	}
	if err := s.stopAt(StepStartTLS); err != nil {
		return nil, err
	}
	if s.fault(StartTLSFailure) {
		return nil, s.refuse(StepStartTLS, "failure", "the receiver offered STARTTLS and then refused it (fault starttls-failure)",
			"<failure xmlns='"+nsTLS+"'/>", "</stream:stream>")
	}
	if err := s.send("<proceed xmlns='" + nsTLS + "'/>"); err != nil {
		return nil, err
	}
	s.step = StepTLSHandshake
	tc := tls.Server(s.raw, s.serverTLS())
	if err := tc.Handshake(); err != nil {
		return nil, s.handshakeError(err)
	}
	return s.secured(tc), nil
}

// initiateStartTLS asks for TLS and runs the client handshake.
func (s *side) initiateStartTLS(r xml.TokenReader) (io.ReadWriter, error) {
	s.step = StepStartTLS
	if err := s.send("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
		return nil, err
	}
	el, err := s.read(r)
	if err != nil {
		return nil, err
	}
	switch {
	case el.is(nsTLS, "proceed"):
	case el.is(nsTLS, "failure"):
		return nil, s.peerFail(StepStartTLS, "failure", "the "+string(s.peerRole)+" answered <starttls/> with <failure/>")
	default:
		return nil, badFormat(fmt.Sprintf("expected <proceed/> or <failure/>, got %s", el))
	}
	s.step = StepTLSHandshake
	tc := tls.Client(s.raw, s.clientTLS())
	if err := tc.Handshake(); err != nil {
		return nil, s.handshakeError(err)
	}
	return s.secured(tc), nil
}

// secured switches recording to the TLS connection and returns it as the
// connection of the restarted stream.
func (s *side) secured(tc *tls.Conn) io.ReadWriter {
	s.secure = true
	cs := tc.ConnectionState()
	if s.conn == "main" {
		info := tlsInfo(cs)
		if s.role == Initiator {
			info.PeerCertificate = "valid"
			if s.certErr != nil {
				info.PeerCertificate = s.certErr.Error()
			}
			if s.peerCert != nil {
				info.PeerSubject = s.peerCert.Subject.String() + " DNS:" + strings.Join(s.peerCert.DNSNames, ",")
				info.PeerIssuer = s.peerCert.Issuer.String()
			}
		}
		s.tr.setTLS(info)
	}
	s.c = &recConn{Conn: tc, tr: s.tr, secure: true, reads: s.c.reads}
	s.relabel()
	return s.c
}

// handshakeError classifies a failed TLS handshake: rejected by our own
// check (recorded already), rejected by the peer (an alert), or cut off.
func (s *side) handshakeError(err error) error {
	var fe failed
	if errors.As(err, &fe) {
		return err
	}
	if strings.Contains(err.Error(), "remote error") {
		return s.peerFail(StepTLSHandshake, "bad-certificate", fmt.Sprintf("the %s aborted the TLS handshake: %v", s.peerRole, err))
	}
	if isTimeout(err) {
		return err
	}
	return s.peerFail(StepTLSHandshake, "handshake-failure", fmt.Sprintf("TLS handshake with the %s failed: %v", s.peerRole, err))
}

// goSilentNow stops answering until the deadline or the peer gives up.
func (s *side) goSilentNow() error {
	s.outwait()
	buf := make([]byte, 512)
	for {
		if _, err := s.raw.Read(buf); err != nil {
			return failed{Failure{Step: s.step, Condition: "silent", By: s.role, Message: "went silent on purpose"}}
		}
	}
}

// now is the clock certificates are checked against.
var now = time.Now

// outwait gives a silent side a deadline later than its peer's, so that
// the peer sees silence rather than a close.
func (s *side) outwait() {
	_ = s.raw.SetReadDeadline(time.Now().Add(2 * s.ep.timeout))
}
