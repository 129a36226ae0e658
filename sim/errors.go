package sim

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"syscall"

	"mellium.im/xmpp/stream"

	"xmppneg/policy/outcome"
)

// recorded is an error whose failure is in the trace already: the end
// that met it recorded it, and told its peer when it had to.
type recorded struct{ f outcome.Failure }

func (e *recorded) Error() string { return e.f.Explain() }

// streamError is a stream error this end raises (RFC 6120 §4.9): it is
// recorded, sent to the peer inside a stream of ours, and the stream is
// closed. step, when set, is where it belongs if not the current step.
type streamError struct {
	cond outcome.Condition
	text string
	step outcome.Step
}

func (e *streamError) Error() string { return fmt.Sprintf("<%s/>: %s", e.cond, e.text) }

func policyViolation(text string) *streamError {
	return &streamError{cond: outcome.PolicyViolation, text: text}
}

func badFormat(text string) *streamError { return &streamError{cond: outcome.BadFormat, text: text} }

// peerStreamError is a <stream:error/> the peer sent.
type peerStreamError struct {
	cond outcome.Condition
	text string
}

func (e *peerStreamError) Error() string {
	if e.text != "" {
		return fmt.Sprintf("stream error <%s/>: %s", e.cond, e.text)
	}
	return fmt.Sprintf("stream error <%s/>", e.cond)
}

// errStreamClosed is returned when the peer ends its stream.
var errStreamClosed = errors.New("the peer closed its stream")

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// isClosed reports whether err means the connection went away.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// isSyntax reports whether err is XML that did not parse. Whether the
// stream was cut off instead is for the reader to say (reader.err).
func isSyntax(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se)
}

// tlsAlert is a TLS alert number (RFC 8446 §6).
type tlsAlert uint8

// alertProtocolVersion is protocol_version: no TLS version in common.
const alertProtocolVersion tlsAlert = 70

// aboutCertificate reports whether the alert refuses a certificate:
// bad_certificate, unsupported_certificate, certificate_revoked,
// certificate_expired, certificate_unknown, unknown_ca or
// certificate_required.
func (a tlsAlert) aboutCertificate() bool {
	switch a {
	case 42, 43, 44, 45, 46, 48, 116:
		return true
	}
	return false
}

// remoteAlert returns the alert the peer sent, when err is one.
//
// crypto/tls has no supported way to read it. tls.AlertError (Go 1.21)
// is not it: only QUIC connections return it, for the alert this end
// would have sent. An alert received on a TCP connection is, up to Go
// 1.26 at least, a *net.OpError with Op "remote error" whose Err is the
// package's unexported alert type, a uint8 (readRecordOrCCS in
// crypto/tls/conn.go), with no Unwrap, As or exported twin. So the
// number is read by the Err's kind, the one thing of the internal type
// this relies on, rather than from its message. TestRemoteAlertIsTyped
// fails loudly, saying what crypto/tls returned, when a Go release
// changes it.
func remoteAlert(err error) (tlsAlert, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return tlsAlert(v.Uint()), true
}

// streamVersion classifies a stream header's version: a stream without
// one, or with a version below 1.0, is a pre-1.0 stream (RFC 6120
// §4.7.5), which this harness supports as servers that speak dialback
// without XMPP 1.0 need; 1.x is XMPP 1.0; a later major version, or one
// that does not parse, is not supported.
func streamVersion(v string) (legacy, ok bool) {
	if v == "" {
		return true, true
	}
	pv, err := stream.ParseVersion(v)
	switch {
	case err != nil:
		return false, false
	case pv.Less(stream.DefaultVersion):
		return true, true
	}
	return false, pv.Major == stream.DefaultVersion.Major
}

func orDefault[T comparable](s, def T) T {
	var zero T
	if s == zero {
		return def
	}
	return s
}
