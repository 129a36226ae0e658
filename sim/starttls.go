package sim

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// STARTTLS (RFC 6120 §5): the rules of when it is offered and used, and
// both ends of the exchange and the handshake.

// startTLSFeature is <starttls/> in <stream:features/>. It is negotiated
// first and once, before any authentication, by named steps of the
// roles: secure (the initiating end, and a receiving end's verify
// connection) and serveStartTLS (the receiving end).
var startTLSFeature = streamFeature{
	names: []xml.Name{{Space: nsTLS, Local: "starttls"}},
	offer: func(rs *receiverState, authenticated bool, f *features) {
		c := rs.c
		if authenticated || c.secure {
			return
		}
		f.StartTLS, f.TLSRequired = startTLSOffer(c.ep.cfg.Settings, c.ep.cert != nil)
		f.TLSRequired = f.TLSRequired && !c.ep.fault(OmitRequired)
	},
	list: func(b *strings.Builder, f features) {
		if !f.StartTLS {
			return
		}
		b.WriteString("<starttls xmlns='" + nsTLS + "'>")
		if f.TLSRequired {
			b.WriteString("<required/>")
		}
		b.WriteString("</starttls>")
	},
	parse: func(el *element, f *features) {
		f.StartTLS = true
		f.TLSRequired = el.child("", "required") != nil
	},
	describe: func(f features) string {
		switch {
		case !f.StartTLS:
			return ""
		case f.TLSRequired:
			return "starttls (required)"
		}
		return "starttls"
	},
	offered: func(f features) bool { return f.StartTLS },
}

// startTLSOffer says whether a receiving end offers STARTTLS on a plain
// stream, and whether with <required/>: when its TLS is not NotSupported
// and it has a certificate to present; required when TLS is Required
// (unless its behaviour omits the marker, as jabberd2 does).
func startTLSOffer(p policy.Settings, hasCert bool) (offer, required bool) {
	offer = p.TLS != policy.NotSupported && (hasCert || p.NoCertTLS != policy.NoCertTLSWithhold)
	return offer, offer && p.TLS == policy.Required && p.RequiredMarker == policy.RequiredMarkerSend
}

// tlsChoice is what a connecting end decides about TLS on a plain stream.
type tlsChoice uint8

const (
	tlsSkip tlsChoice = iota // go on without TLS
	tlsUse                   // STARTTLS, as offered
	tlsTry                   // STARTTLS although it is not offered
	tlsWait                  // say nothing more and wait (jabberd2 with require_tls)
)

// startTLSChoice is what a connecting end with settings p does about TLS
// on a plain stream given the offer f: use it, go on without it, or,
// when TLS is required and cannot be had, what its behaviour says: give
// up with a stream error (at the starttls step, or at the stream step
// as ejabberd does), try <starttls/> anyway (Prosody), or wait.
func startTLSChoice(p policy.Settings, f features, me, them outcome.Side) (tlsChoice, *streamError) {
	giveUp := func(cond outcome.Condition, text string) (tlsChoice, *streamError) {
		step := outcome.StepStartTLS
		if p.MissingTLS == policy.MissingTLSGiveUpAtStream {
			step = outcome.StepStream
		}
		return tlsSkip, &streamError{cond: cond, step: step, text: text}
	}
	switch {
	case f.StartTLS && p.TLS != policy.NotSupported:
		return tlsUse, nil
	case f.TLSRequired:
		return giveUp(outcome.UnsupportedFeature, fmt.Sprintf("%s requires TLS but %s does not support it (TLS NotSupported)", them, me))
	case p.TLS == policy.Required && p.MissingTLS == policy.MissingTLSTry:
		return tlsTry, nil
	case p.TLS == policy.Required && p.MissingTLS == policy.MissingTLSWait:
		return tlsWait, nil
	case p.TLS == policy.Required:
		return giveUp(outcome.PolicyViolation, fmt.Sprintf("%s requires TLS but the %s does not offer STARTTLS", me, them))
	}
	return tlsSkip, nil
}

// serveStartTLS answers <starttls/> and runs the server handshake.
func (rs *receiverState) serveStartTLS() error {
	c := rs.c
	c.step = outcome.StepStartTLS
	if !rs.offer.StartTLS && !c.secure && c.ep.cfg.Settings.UnofferedStartTLS == policy.UnofferedStartTLSIgnore {
		// Left unanswered (jabberd2 without a certificate): the peer is
		// the one to give up; anything else it sends is read and ignored.
		_ = c.raw.SetReadDeadline(time.Now().Add(2 * c.ep.timeout))
		for {
			if _, err := c.read(); err != nil {
				return c.abort(err)
			}
		}
	}
	if !rs.offer.StartTLS {
		why := "TLS NotSupported"
		switch {
		case c.secure:
			why = "the stream is TLS-protected already"
		case c.ep.cert == nil:
			why = "no certificate"
		}
		return c.refuse(outcome.StartTLSFailure, fmt.Sprintf("%s sent <starttls/> but the %s did not offer it (%s)", c.them, c.me, why),
			"<failure xmlns='"+nsTLS+"'/>", closeTag)
	}
	if err := rs.stopAt(outcome.StepStartTLS); err != nil {
		return err
	}
	if c.ep.cert == nil && c.ep.cfg.Settings.NoCertTLS == policy.NoCertTLSOfferAndRefuse {
		return c.refuse(outcome.StartTLSFailure, fmt.Sprintf("the %s has no certificate: it offered STARTTLS and refuses it", c.me),
			"<failure xmlns='"+nsTLS+"'/>", closeTag)
	}
	if c.ep.fault(StartTLSFailure) {
		return c.refuse(outcome.StartTLSFailure, "the receiver offered STARTTLS and then refused it (fault starttls-failure)",
			"<failure xmlns='"+nsTLS+"'/>", closeTag)
	}
	if err := c.send("<proceed xmlns='" + nsTLS + "'/>"); err != nil {
		return c.abort(err)
	}
	return c.handshake(tls.Server(c.raw, c.serverTLS()))
}

// directTLS runs the client handshake at once on a connection to a
// direct TLS target (XEP-0368), before any stream.
func (o *connecting) directTLS() error {
	c := o.c
	if !c.directTLS {
		return nil
	}
	cfg := c.clientTLS()
	cfg.NextProtos = []string{alpnXMPPServer}
	return c.handshake(tls.Client(c.raw, cfg))
}

// alpnXMPPServer is the ALPN protocol of direct TLS s2s (XEP-0368).
const alpnXMPPServer = "xmpp-server"

// startTLS asks for TLS and runs the client handshake.
func (o *connecting) startTLS() error {
	c := o.c
	c.step = outcome.StepStartTLS
	if err := c.send("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
		return c.abort(err)
	}
	el, err := c.read()
	if err != nil {
		return c.abort(err)
	}
	switch {
	case el.is(nsTLS, "proceed"):
	case el.is(nsTLS, "failure"):
		err := c.peerFailed(outcome.StartTLSFailure, "the %s answered <starttls/> with <failure/>", c.them)
		c.closeStream()
		return err
	default:
		return c.abort(badFormat(fmt.Sprintf("expected <proceed/> or <failure/>, got %s", el)))
	}
	return c.handshake(tls.Client(c.raw, c.clientTLS()))
}

// secure applies the STARTTLS rules to the offer of the current stream:
// when both ends allow TLS it starts it, reopens the stream with reopen
// and refuses the receiver's certificate after TLS if its behaviour
// says so; when one end requires TLS that the other cannot do, it does
// what its behaviour says.
func (o *connecting) secure(reopen func() error) error {
	c := o.c
	if c.secure {
		// Direct TLS: the stream was opened over TLS already.
		return o.refuseServerAfterTLS()
	}
	choice, refusal := startTLSChoice(c.ep.cfg.Settings, o.offer, c.me, c.them)
	switch {
	case refusal != nil:
		return c.abort(refusal)
	case choice == tlsSkip:
		return nil
	case choice == tlsWait:
		c.step = outcome.StepStartTLS
		return c.waitSilently()
	}
	if err := o.startTLS(); err != nil {
		return err
	}
	if err := reopen(); err != nil {
		return err
	}
	return o.refuseServerAfterTLS()
}

// refuseServerAfterTLS refuses an invalid server certificate once the
// stream has been reopened over TLS, as the end's behaviour says: with
// <not-authorized/> (Prosody's s2s_secure_auth), or by hanging up
// (ejabberd without dialback).
func (o *connecting) refuseServerAfterTLS() error {
	c := o.c
	if c.certErr == nil || c.headerSent && c.closed {
		return nil
	}
	c.step = outcome.StepStream
	switch c.ep.cfg.Settings.RefuseServer {
	case policy.ServerRefusalAfterTLS:
		return c.abort(&streamError{cond: outcome.NotAuthorized, text: fmt.Sprintf("the %s's certificate is not valid: %v", c.them, c.certErr)})
	case policy.ServerRefusalClose:
		err := c.fail(outcome.ConnectionClosed, "hung up after TLS: the %s's certificate is not valid: %v", c.them, c.certErr)
		c.raw.Close()
		return err
	}
	return nil
}

// waitSilently says nothing more and waits until the peer gives up, or
// the end's own deadline, which it puts after the peer's so that the
// peer sees silence rather than a close.
func (c *xconn) waitSilently() error {
	_ = c.raw.SetReadDeadline(time.Now().Add(2 * c.ep.timeout))
	buf := make([]byte, 512)
	for {
		if _, err := c.raw.Read(buf); err != nil {
			return &recorded{outcome.Failure{Step: c.step, Condition: outcome.SilentOnPurpose, By: c.me, Message: "waited in silence, as its behaviour says"}}
		}
	}
}

// handshake runs the TLS handshake of tc, after <proceed/>, and records
// the TLS state of the connection.
func (c *xconn) handshake(tc *tls.Conn) error {
	c.step = outcome.StepTLSHandshake
	if err := c.upgrade(tc); err != nil {
		return c.abort(err)
	}
	if err := tc.Handshake(); err != nil {
		return c.handshakeFailed(err)
	}
	if c.versionErr != nil {
		// A version refused with internal_error by a client that was
		// never asked for its certificate, the alert's moment: closed.
		c.raw.Close()
		return c.versionErr
	}
	c.handshaken = true
	c.secured(tc)
	// Said once, by the end that asked to resume: the main connection
	// never does, a verify connection does when it has been here before.
	if c.name == verifyConn && c.me == outcome.Receiver && tc.ConnectionState().DidResume {
		c.tr.note(fmt.Sprintf("verify connection to %s resumed a TLS session", c.peer))
	}
	return nil
}

// serverTLS is the receiving end's TLS configuration. It asks for the
// peer's certificate without requiring one (dialback-only peers have
// none) and judges it itself, for the extended key usage its behaviour
// requires of a client certificate: an invalid one aborts the handshake
// only when its behaviour refuses at the handshake (strict).
func (c *xconn) serverTLS() *tls.Config {
	lo, hi := c.tlsVersions()
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
					c.scanVersion = max(c.scanVersion, v)
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
			c.versionErr = c.fail(outcome.HandshakeFailure, "the %s has no certificate: it offered TLS and fails the handshake (no shared cipher)", c.me)
			_, _ = c.raw.Write(handshakeFailureAlert)
			c.raw.Close()
			return nil, errVersionClose
		}
		if versionsMeet {
			return nil, nil
		}
		if c.ep.cfg.Settings.VersionMismatch == policy.VersionMismatchInternalError {
			// crypto/tls answers an error here with internal_error.
			c.versionErr = c.fail(outcome.HandshakeFailure, "the %s offers %s; the %s speaks only %s and aborts with the internal_error alert",
				c.them, versionsText(hello.SupportedVersions), c.me, c.ep.cfg.Settings.TLSRangeText())
			return nil, errVersionAlert
		}
		if c.ep.cfg.Settings.VersionMismatch == policy.VersionMismatchClose {
			c.versionErr = c.fail(outcome.ConnectionClosed, "the %s offers %s; the %s speaks only %s and closes the connection without an alert",
				c.them, versionsText(hello.SupportedVersions), c.me, c.ep.cfg.Settings.TLSRangeText())
			c.raw.Close()
			return nil, errVersionClose
		}
		c.versionErr = c.fail(outcome.ProtocolVersion, "the %s offers %s; the %s speaks only %s",
			c.them, versionsText(hello.SupportedVersions), c.me, c.ep.cfg.Settings.TLSRangeText())
		return nil, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // dialback-only peers have none
		}
		return c.judge(cs, clientUsage(c.ep.cfg.Settings.EKU), c.ep.cfg.Settings.Refuse == policy.RefuseAtHandshake)
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

// clientTLS is the connecting end's TLS configuration: it presents its
// certificate (for SASL EXTERNAL) and judges the receiver's, aborting on
// an invalid one when strict.
func (c *xconn) clientTLS() *tls.Config {
	lo, hi := c.tlsVersions()
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
				c.versionErr = c.fail(outcome.ConnectionClosed, "the %s chose %s; the %s offered every version from TLS 1.0 but completes only %s, and closes the connection without an alert",
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
				c.versionErr = c.fail(outcome.HandshakeFailure, "the %s chose %s; the %s offered every version from TLS 1.0 but completes only %s, and aborts with the internal_error alert",
					c.them, tls.VersionName(cs.Version), c.me, c.ep.cfg.Settings.TLSRangeText())
				return nil
			}
			return c.judge(cs, x509.ExtKeyUsageServerAuth, c.ep.cfg.Settings.RefuseServer == policy.ServerRefusalHandshake)
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

// tlsVersions is the range of TLS versions the end speaks, as
// crypto/tls numbers them.
func (c *xconn) tlsVersions() (lo, hi uint16) {
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
func (c *xconn) judge(cs tls.ConnectionState, usage x509.ExtKeyUsage, abort bool) error {
	if len(cs.PeerCertificates) > 0 {
		c.peerCert = cs.PeerCertificates[0]
	}
	c.peerChain, c.peerUsage = cs.PeerCertificates, usage
	c.certErr = certs.Check(cs.PeerCertificates, c.ep.roots, c.peer, usage, c.ep.now(), c.ep.hints)
	if c.certErr != nil && abort {
		return c.fail(outcome.BadCertificate, "%s's certificate rejected: %v", c.them, c.certErr)
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
func (c *xconn) secured(tc *tls.Conn) {
	if c.name != mainConn {
		return
	}
	cs := tc.ConnectionState()
	info := &TLSInfo{Version: tls.VersionName(cs.Version), CipherSuite: tls.CipherSuiteName(cs.CipherSuite)}
	if c.me == outcome.Initiator {
		info.PeerCertificate = "valid"
		if c.certErr != nil {
			info.PeerCertificate = c.certErr.Error()
		}
		if c.peerCert != nil {
			info.PeerSubject = c.peerCert.Subject.String() + " DNS:" + strings.Join(c.peerCert.DNSNames, ",")
			info.PeerIssuer = c.peerCert.Issuer.String()
			info.PeerPurposes = certs.Purposes(c.peerCert)
			info.PeerClientAuth = certs.ClientAuthCapable(c.peerCert)
		}
	}
	c.tr.setTLS(info)
}

// handshakeFailed records a failed TLS handshake: rejected by our own
// check (recorded already), refused by the peer with an alert, cut off,
// or failed otherwise on the peer's part.
func (c *xconn) handshakeFailed(err error) error {
	var rec *recorded
	if errors.As(err, &rec) {
		return err
	}
	if c.versionErr != nil {
		return c.versionErr
	}
	if _, ok := remoteAlert(err); ok || isTimeout(err) || isClosed(err) {
		return c.abort(err)
	}
	return c.peerFailed(outcome.HandshakeFailure, "TLS handshake with the %s failed: %v", c.them, err)
}

// checkPeerName checks again, now that the peer's domain is known, a
// certificate received on direct TLS, where the handshake could not
// check the name: the result replaces what the handshake found.
func (c *xconn) checkPeerName() error {
	c.certErr = certs.Check(c.peerChain, c.ep.roots, c.peer, c.peerUsage, c.ep.now(), c.ep.hints)
	return c.certErr
}
