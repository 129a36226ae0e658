package sim

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// tlsEnd is one end's TLS on a connection, kept apart from the wire
// (xconn) as crypto/tls keeps its Config and ConnectionState apart from
// its Conn: the configuration it hands crypto/tls (versions, its
// certificate, the callbacks that judge the peer's), and what the
// handshake found. Each role's state holds the one of its connection.
type tlsEnd struct {
	c *xconn // the wire it runs over, where failures are recorded
	// peerCert is the certificate the peer presented in TLS, if any, and
	// certErr what is wrong with it (nil when it is valid).
	peerCert *x509.Certificate
	certErr  error
	// peerChain is what the peer sent, and peerUsage what it was checked
	// for: on direct TLS the receiver learns the peer's domain only from
	// the stream header, and checks the name then.
	peerChain []*x509.Certificate
	peerUsage x509.ExtKeyUsage
	// versionErr is the recorded failure of a handshake in which the
	// peer offered no TLS version this end speaks.
	versionErr error
	// scanVersion is set when the peer's ClientHello says it is the
	// probe's TLS version scan (ScanALPN): the one version it offered.
	scanVersion uint16
	// handshaken is set once a TLS handshake on the connection completed.
	handshaken bool
}

// alpnXMPPServer is the ALPN protocol of direct TLS s2s (XEP-0368).
const alpnXMPPServer = "xmpp-server"

// serverHandshake runs the receiving end's TLS handshake, after
// <proceed/> or at once on direct TLS.
func (t *tlsEnd) serverHandshake() error {
	return t.handshake(tls.Server(t.c.raw, t.serverConfig()))
}

// clientHandshake runs the connecting end's TLS handshake, offering
// protos by ALPN (direct TLS offers xmpp-server; STARTTLS nothing).
func (t *tlsEnd) clientHandshake(protos []string) error {
	cfg := t.clientConfig()
	cfg.NextProtos = protos
	return t.handshake(tls.Client(t.c.raw, cfg))
}

// handshake runs the TLS handshake of tc and records the TLS state of
// the connection.
func (t *tlsEnd) handshake(tc *tls.Conn) error {
	c := t.c
	c.step = outcome.StepTLSHandshake
	if err := c.upgrade(tc); err != nil {
		return c.abort(err)
	}
	if err := tc.Handshake(); err != nil {
		return t.handshakeFailed(err)
	}
	if t.versionErr != nil {
		// A version refused with internal_error by a client that was
		// never asked for its certificate, the alert's moment: closed.
		c.raw.Close()
		return t.versionErr
	}
	t.handshaken = true
	t.secured(tc)
	// Said once, by the end that asked to resume: the main connection
	// never does, a verify connection does when it has been here before.
	if c.name == verifyConn && c.me == outcome.Receiver && tc.ConnectionState().DidResume {
		c.tr.note(fmt.Sprintf("verify connection to %s resumed a TLS session", c.peer))
	}
	return nil
}

// serverConfig is the receiving end's TLS configuration. It asks for the
// peer's certificate without requiring one (dialback-only peers have
// none) and judges it itself, for the extended key usage its behaviour
// requires of a client certificate: an invalid one aborts the handshake
// only when its behaviour refuses at the handshake (strict).
func (t *tlsEnd) serverConfig() *tls.Config {
	c := t.c
	lo, hi := t.versions()
	// A clone of the endpoint's base, which holds what does not depend
	// on the connection: a Config made anew for every connection would
	// derive new session ticket keys in every handshake.
	cfg := c.ep.serverTLSBase().Clone()
	// The versions are compared here, where they are known as numbers,
	// so that the failure says which; crypto/tls then refuses with the
	// protocol_version alert, as it would anyway.
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, ScanALPN) {
			// The probe's scan offers one version, the highest listed
			// (below 1.3 the list is inferred from it).
			for _, v := range hello.SupportedVersions {
				if v >= tls.VersionTLS10 && v <= tls.VersionTLS13 {
					t.scanVersion = max(t.scanVersion, v)
				}
			}
		}
		versionsMeet := false
		for _, v := range hello.SupportedVersions {
			versionsMeet = versionsMeet || (v >= lo && v <= hi)
		}
		if versionsMeet && c.ep.cert == nil {
			// Offered without a certificate (no_cert_tls=offer-and-fail):
			// no cipher suite can be chosen, and the handshake_failure
			// alert says so, as OpenSSL does ("no shared cipher").
			t.versionErr = c.fail(outcome.HandshakeFailure, "the %s has no certificate: it offered TLS and fails the handshake (no shared cipher)", c.me)
			_, _ = c.raw.Write(handshakeFailureAlert)
			c.raw.Close()
			return nil, errVersionClose
		}
		if versionsMeet {
			return nil, nil
		}
		if c.ep.cfg.Settings.VersionMismatch == policy.VersionMismatchInternalError {
			// crypto/tls answers an error here with internal_error.
			t.versionErr = c.fail(outcome.HandshakeFailure, "the %s offers %s; the %s speaks only %s and aborts with the internal_error alert",
				c.them, versionsText(hello.SupportedVersions), c.me, c.ep.cfg.Settings.TLSRangeText())
			return nil, errVersionAlert
		}
		if c.ep.cfg.Settings.VersionMismatch == policy.VersionMismatchClose {
			t.versionErr = c.fail(outcome.ConnectionClosed, "the %s offers %s; the %s speaks only %s and closes the connection without an alert",
				c.them, versionsText(hello.SupportedVersions), c.me, c.ep.cfg.Settings.TLSRangeText())
			c.raw.Close()
			return nil, errVersionClose
		}
		t.versionErr = c.fail(outcome.ProtocolVersion, "the %s offers %s; the %s speaks only %s",
			c.them, versionsText(hello.SupportedVersions), c.me, c.ep.cfg.Settings.TLSRangeText())
		return nil, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // dialback-only peers have none
		}
		return t.judge(cs, clientUsage(c.ep.cfg.Settings.EKU), c.ep.cfg.Settings.Refuse == policy.RefuseAtHandshake)
	}
	return cfg
}

// serverTLSBase is the part of the endpoint's server TLS configuration
// that every connection shares, made once.
func (e *Endpoint) serverTLSBase() *tls.Config {
	e.tlsOnce.Do(func() {
		l, h := e.cfg.Settings.TLSRange()
		cfg := &tls.Config{
			MinVersion: tlsVersionCode(l),
			MaxVersion: tlsVersionCode(h),
			ClientAuth: tls.RequestClientCert,
			NextProtos: []string{alpnXMPPServer},
		}
		if e.cert != nil {
			cfg.Certificates = []tls.Certificate{*e.cert}
		}
		// From crypto/rand, not Config.Rand: tickets never reach the
		// transcript, and a deterministic run's ids stay as they were.
		var key [32]byte
		if _, err := rand.Read(key[:]); err == nil {
			cfg.SetSessionTicketKeys([][32]byte{key})
		}
		e.tlsBase = cfg
	})
	return e.tlsBase
}

// clientConfig is the connecting end's TLS configuration: it presents its
// certificate (for SASL EXTERNAL) and judges the receiver's, aborting on
// an invalid one when strict.
func (t *tlsEnd) clientConfig() *tls.Config {
	c := t.c
	lo, hi := t.versions()
	mismatch := c.ep.cfg.Settings.VersionMismatch
	closeOnMismatch := mismatch == policy.VersionMismatchClose
	tooLow := false // the server chose a version below lo (internal-error)
	cfg := &tls.Config{
		MinVersion: lo,
		MaxVersion: hi,
		ServerName: c.peer,
		// Verification is done below, so that a lenient endpoint can go on
		// with an invalid certificate and the reason is still recorded.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if closeOnMismatch && cs.Version < lo {
				t.versionErr = c.fail(outcome.ConnectionClosed, "the %s chose %s; the %s offered every version from TLS 1.0 but completes only %s, and closes the connection without an alert",
					c.them, tls.VersionName(cs.Version), c.me, c.ep.cfg.Settings.TLSRangeText())
				c.raw.Close()
				return errVersionClose
			}
			if mismatch == policy.VersionMismatchInternalError && cs.Version < lo {
				// Refused with internal_error once the client's
				// certificate is asked for (crypto/tls sends that alert
				// when GetClientCertificate fails; this callback's error
				// would send bad_certificate).
				tooLow = true
				t.versionErr = c.fail(outcome.HandshakeFailure, "the %s chose %s; the %s offered every version from TLS 1.0 but completes only %s, and aborts with the internal_error alert",
					c.them, tls.VersionName(cs.Version), c.me, c.ep.cfg.Settings.TLSRangeText())
				return nil
			}
			return t.judge(cs, x509.ExtKeyUsageServerAuth, c.ep.cfg.Settings.RefuseServer == policy.ServerRefusalHandshake)
		},
	}
	if mismatch.OffersFromTLS10() {
		// As OpenSSL-based servers do: every version is offered, and one
		// below what the end completes ends the connection.
		cfg.MinVersion = tls.VersionTLS10
	}
	if c.ep.cert != nil && !c.ep.cfg.WithholdClientCert {
		// Presented whatever CAs the server's CertificateRequest names, as
		// OpenSSL-based servers do: Go would otherwise send no certificate
		// to a server that lists CAs which did not issue it (ejabberd
		// lists its trusted CAs), and a self-signed or untrusted
		// certificate would be tested as no certificate at all.
		cert := c.ep.cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	} else if c.ep.cert != nil {
		cfg.Certificates = []tls.Certificate{*c.ep.cert}
	}
	if mismatch == policy.VersionMismatchInternalError {
		get, fixed := cfg.GetClientCertificate, cfg.Certificates
		cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			switch {
			case tooLow:
				return nil, errVersionAlert
			case get != nil:
				return get(cri)
			case len(fixed) > 0 && cri.SupportsCertificate(&fixed[0]) == nil:
				return &fixed[0], nil
			}
			return &tls.Certificate{}, nil
		}
	}
	if c.name == verifyConn {
		// A receiving server opens verify connections to the same
		// authoritative servers again and again; like OpenSSL-based
		// servers it resumes their TLS sessions. The main connection
		// never resumes: each negotiation pays its full handshake.
		cfg.ClientSessionCache = c.ep.verifySessions
	}
	return cfg
}

// handshakeFailureAlert is a TLS record holding a fatal handshake_failure
// alert (RFC 8446 §6): content type 21, legacy version 3.3, length 2,
// level fatal (2), description 40.
var handshakeFailureAlert = []byte{21, 3, 3, 0, 2, 2, 40}

// errVersionClose ends a handshake whose versions do not work out, on a
// connection already closed without an alert (version_mismatch=close).
var errVersionClose = errors.New("TLS versions do not work out: connection closed without an alert")

// errVersionAlert ends a handshake whose versions do not work out with
// the internal_error alert (version_mismatch=internal-error).
var errVersionAlert = errors.New("TLS versions do not work out: internal_error alert")

// versions is the range of TLS versions the end speaks, as
// crypto/tls numbers them.
func (t *tlsEnd) versions() (lo, hi uint16) {
	c := t.c
	l, h := c.ep.cfg.Settings.TLSRange()
	return tlsVersionCode(l), tlsVersionCode(h)
}

// tlsVersionCode is crypto/tls's number for version v of TLSRange (10
// is TLS 1.0, 0x0301).
func tlsVersionCode(v int) uint16 { return uint16(0x0300 + v - 9) }

// versionsText names the versions of a ClientHello: "TLS 1.0–1.1".
func versionsText(vs []uint16) string {
	var lo, hi uint16
	for _, v := range vs {
		if v < tls.VersionTLS10 || v > tls.VersionTLS13 {
			continue // GREASE and the like
		}
		if lo == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	if lo == 0 {
		return "no TLS version it knows"
	}
	name := func(v uint16) string { return strings.TrimPrefix(tls.VersionName(v), "TLS ") }
	if lo == hi {
		return "TLS " + name(lo) + " only"
	}
	return "TLS " + name(lo) + "–" + name(hi)
}

// judge checks the peer's certificate for usage and the peer's domain,
// remembers what it found, and aborts the handshake when abort is set
// and the certificate is bad.
func (t *tlsEnd) judge(cs tls.ConnectionState, usage x509.ExtKeyUsage, abort bool) error {
	c := t.c
	if len(cs.PeerCertificates) > 0 {
		t.peerCert = cs.PeerCertificates[0]
	}
	t.peerChain, t.peerUsage = cs.PeerCertificates, usage
	t.certErr = certs.Check(cs.PeerCertificates, c.ep.roots, c.peer, usage, c.ep.now(), c.ep.hints)
	if t.certErr != nil && abort {
		return c.fail(outcome.BadCertificate, "%s's certificate rejected: %v", c.them, t.certErr)
	}
	return nil
}

// clientUsage is the extended key usage a receiving end checks a client
// certificate for.
func clientUsage(p policy.Purpose) x509.ExtKeyUsage {
	switch p {
	case policy.PurposeClient:
		return x509.ExtKeyUsageClientAuth
	case policy.PurposeAny:
		return x509.ExtKeyUsageAny
	}
	return x509.ExtKeyUsageServerAuth
}

// secured records the TLS state of the main connection once the
// handshake is done.
func (t *tlsEnd) secured(tc *tls.Conn) {
	c := t.c
	if c.name != mainConn {
		return
	}
	cs := tc.ConnectionState()
	info := &TLSInfo{Version: tls.VersionName(cs.Version), CipherSuite: tls.CipherSuiteName(cs.CipherSuite)}
	if c.me == outcome.Initiator {
		info.PeerCertificate = "valid"
		if t.certErr != nil {
			info.PeerCertificate = t.certErr.Error()
		}
		if t.peerCert != nil {
			info.PeerSubject = t.peerCert.Subject.String() + " DNS:" + strings.Join(t.peerCert.DNSNames, ",")
			info.PeerIssuer = t.peerCert.Issuer.String()
			info.PeerPurposes = certs.Purposes(t.peerCert)
			info.PeerClientAuth = certs.ClientAuthCapable(t.peerCert)
		}
	}
	c.tr.setTLS(info)
}

// handshakeFailed records a failed TLS handshake: rejected by our own
// check (recorded already), refused by the peer with an alert, cut off,
// or failed otherwise on the peer's part.
func (t *tlsEnd) handshakeFailed(err error) error {
	c := t.c
	var rec *recorded
	if errors.As(err, &rec) {
		return err
	}
	if t.versionErr != nil {
		return t.versionErr
	}
	if _, ok := remoteAlert(err); ok || isTimeout(err) || isClosed(err) {
		return c.abort(err)
	}
	return c.peerFailed(outcome.HandshakeFailure, "TLS handshake with the %s failed: %v", c.them, err)
}

// checkPeerName checks again, now that the peer's domain is known, a
// certificate received on direct TLS, where the handshake could not
// check the name: the result replaces what the handshake found.
func (t *tlsEnd) checkPeerName() error {
	c := t.c
	t.certErr = certs.Check(t.peerChain, c.ep.roots, c.peer, t.peerUsage, c.ep.now(), c.ep.hints)
	return t.certErr
}
