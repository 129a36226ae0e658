package policy

import (
	"fmt"
	"slices"
	"strings"

	"xmppneg/certs"
)

// Behaviour is how an implementation behaves where the standards leave it
// a choice, or where it departs from them: what tells Prosody from
// ejabberd from jabberd2 from this harness beyond the Lync settings. The
// zero Behaviour is this harness's own (its reference behaviour, what
// DefaultSettings and so every spec starts from): each knob's zero value
// is the harness's.
//
// Each field is one knob, with a spec key of the same name as its JSON
// name and an entry in the knobs table (see BehaviourKeys); both the
// engine and the oracle follow it.
type Behaviour struct {
	// Refuse is when a receiving end refuses an invalid client
	// certificate: during the handshake, right after TLS with
	// <not-authorized/> (Prosody's s2s_secure_auth, which refuses a
	// missing certificate too), or only by not letting SASL EXTERNAL
	// succeed, so that dialback stays possible.
	Refuse Refusal `json:"refuse"`
	// RefuseServer is what an initiating end does with an invalid server
	// certificate: abort the handshake, close with <not-authorized/>
	// after TLS, close the connection after TLS without a word (ejabberd
	// without dialback), or nothing.
	RefuseServer ServerRefusal `json:"refuse_server"`
	// EKU is the extended key usage a receiving end requires of a client
	// certificate for SASL EXTERNAL.
	EKU Purpose `json:"eku"`
	// ExternalOffer is when a receiving end offers SASL EXTERNAL after TLS.
	ExternalOffer ExternalOffer `json:"external_offer"`
	// NoFeatures is what a receiving end does when it has nothing left
	// to offer on a TLS-protected stream.
	NoFeatures NoFeatures `json:"no_features"`
	// NoMethod is how an initiating end gives up when no method is left.
	NoMethod NoMethod `json:"no_method"`
	// MissingTLS is what an initiating end does when TLS is required (by
	// either end) and cannot be had.
	MissingTLS MissingTLS `json:"missing_tls"`
	// UnofferedDialback is whether an initiating end sends db:result
	// when the receiver did not advertise dialback.
	UnofferedDialback UnofferedDialback `json:"unoffered_dialback"`
	// Unverifiable is how a receiving end answers a db:result it could
	// not verify with the authoritative server.
	Unverifiable Unverifiable `json:"unverifiable"`
	// PlainDialback is what a receiving end that requires TLS does with
	// a db:result on a plain stream.
	PlainDialback PlainDialback `json:"plain_dialback"`
	// RequiredMarker is whether <required/> marks STARTTLS when TLS is
	// Required.
	RequiredMarker RequiredMarker `json:"required_marker"`
	// AnswerPings is how a receiving end answers a stanza on an
	// authenticated stream: on the same stream when the peer is an
	// endpoint of the harness (as if bidirectional, XEP-0288) and on a
	// stream of its own otherwise, or always on a stream of its own, as
	// real servers do (streams are one-way). Over a stream of its own, the
	// answer needs the reverse negotiation to succeed.
	AnswerPings AnswerPings `json:"answer_pings"`
	// LegacyStreams makes the end open its streams with pre-1.0 headers
	// (no version, RFC 6120 §4.7.5) and send db:result without waiting for
	// features, as jabberd2 without a certificate does.
	LegacyStreams bool `json:"legacy_streams"`
	// TLSMin and TLSMax bound the TLS versions the end speaks: old
	// gateways and Edge servers stop at 1.0 or 1.1, current servers start
	// at 1.2.
	TLSMin TLSVersion `json:"tls_min"`
	TLSMax TLSVersion `json:"tls_max"`
	// VersionMismatch is what the end does when TLS versions do not work
	// out: answer with the protocol_version alert, or, as ejabberd and
	// jabberd2 (OpenSSL, Debian's security level) were seen doing, offer
	// every version from TLS 1.0 as a client and close the connection
	// without an alert, as server or client, when the version is one it
	// will not complete.
	VersionMismatch VersionMismatch `json:"version_mismatch"`
	// NoCertTLS is what a receiving end without a certificate does about
	// STARTTLS: offer none, or offer it (marked required as its TLS
	// setting says) and then fail the handshake, as Prosody 0.12 does
	// ("no shared cipher"), or answer <starttls/> with <failure/>, as
	// ejabberd 23.01 does.
	NoCertTLS NoCertTLS `json:"no_cert_tls"`
	// DialbackOff is how a receiving end without dialback answers a
	// db:result it did not offer dialback for.
	DialbackOff DialbackOff `json:"dialback_off"`
	// UnofferedStartTLS is how a receiving end answers a <starttls/> it
	// did not offer.
	UnofferedStartTLS UnofferedStartTLS `json:"unoffered_starttls"`
	// DirectTLS is XEP-0368: as a receiver the end also listens for
	// connections that start with TLS (published as _xmpps-server), and
	// as an initiator it uses such a target when it finds one.
	DirectTLS bool `json:"direct_tls"`
	// Bidi is XEP-0288 (bidirectional server-to-server): none, as the
	// XEP says (Prosody 13's mod_s2s_bidi), or offered in the namespace
	// of the request, urn:xmpp:bidi, as ejabberd 24.12's mod_s2s_bidi
	// does.
	Bidi Bidi `json:"bidi"`
	// StreamLimits makes a receiving end advertise XEP-0478 stream limits
	// (max-bytes, idle-seconds) in its features, as Prosody 13 does on
	// every s2s stream.
	StreamLimits StreamLimits `json:"stream_limits"`
	// ChannelBinding makes a receiving end advertise XEP-0440 SASL
	// channel-binding types on TLS streams, as ejabberd 24.12 does.
	ChannelBinding ChannelBinding `json:"channel_binding"`
}

// ChannelBinding is whether a receiving end advertises XEP-0440.
type ChannelBinding uint8

const (
	ChannelBindingNone     ChannelBinding = iota
	ChannelBindingEjabberd                // tls-exporter and tls-server-end-point, beside the mechanisms on TLS streams (ejabberd 24.12)
)

// StreamLimits is whether a receiving end advertises XEP-0478 limits.
type StreamLimits uint8

const (
	StreamLimitsNone    StreamLimits = iota
	StreamLimitsProsody              // max-bytes 524288, idle-seconds 840 (Prosody 13's defaults)
)

// Bidi is an end's XEP-0288.
type Bidi uint8

const (
	BidiOff Bidi = iota // no XEP-0288
	BidiXEP             // <bidi xmlns='urn:xmpp:features:bidi'/> offered, <bidi xmlns='urn:xmpp:bidi'/> requested
	// BidiWrongNamespace: <bidi xmlns='urn:xmpp:bidi'/> offered as the
	// feature (ejabberd 24.12; recorded: interop-ejabberd-24).
	BidiWrongNamespace
)

// TLSVersion is a TLS protocol version as a knob: its zero value is the
// knob's default (1.2 for tls_min, 1.3 for tls_max).
type TLSVersion uint8

// tlsMinValues and tlsMaxValues are the knobs' texts, default first.
var (
	tlsMinValues = []string{"1.2", "1.0", "1.1", "1.3"}
	tlsMaxValues = []string{"1.3", "1.0", "1.1", "1.2"}
)

// TLSRange returns the lowest and highest TLS version b speaks, as
// their numbers (1.0 is 10, 1.3 is 13): what a report can say and
// crypto/tls can be told (see TLSVersionCode).
func (b Behaviour) TLSRange() (lo, hi int) {
	num := func(s string) int { return int(s[0]-'0')*10 + int(s[2]-'0') }
	return num(tlsMinValues[b.TLSMin]), num(tlsMaxValues[b.TLSMax])
}

// TLSVersionName names a version number of TLSRange: "TLS 1.2".
func TLSVersionName(v int) string { return fmt.Sprintf("TLS %d.%d", v/10, v%10) }

// TLSRangeText says what b speaks: "TLS 1.2–1.3", or "TLS 1.1 only".
func (b Behaviour) TLSRangeText() string {
	lo, hi := b.TLSRange()
	if lo == hi {
		return TLSVersionName(lo) + " only"
	}
	return fmt.Sprintf("TLS %d.%d–%d.%d", lo/10, lo%10, hi/10, hi%10)
}

// Refusal is when a receiving end refuses an invalid client certificate.
type Refusal uint8

const (
	// RefuseAtHandshake: the handshake is aborted (bad_certificate); a
	// peer without a certificate is let through. The harness's own.
	RefuseAtHandshake Refusal = iota
	// RefuseAtSASL: the handshake completes; EXTERNAL does not succeed
	// with the certificate (refused, or not offered), dialback may.
	RefuseAtSASL
	// RefuseAfterTLS: the stream is closed with <not-authorized/> right
	// after TLS, and a peer without a certificate is refused too.
	RefuseAfterTLS
)

// ServerRefusal is what an initiating end does with an invalid server
// certificate.
type ServerRefusal uint8

const (
	ServerRefusalHandshake ServerRefusal = iota // abort the handshake (the harness's own)
	ServerRefusalNone                           // go on regardless
	ServerRefusalAfterTLS                       // <not-authorized/> after TLS
	ServerRefusalClose                          // close the connection after TLS, without a word
)

// Purpose is the extended key usage required of a certificate.
type Purpose uint8

const (
	// PurposeServer: serverAuth, or no EKU; clientAuth alone is refused.
	// How Prosody checks a peer in both directions, and what the proposed
	// update of XEP-0178 asks.
	PurposeServer Purpose = iota
	// PurposeClient: clientAuth, or no EKU; serverAuth alone is refused
	// ("unsupported certificate purpose"), as ejabberd before 25.08 does
	// for inbound EXTERNAL.
	PurposeClient
	// PurposeAny: any EKU.
	PurposeAny
)

// ExternalOffer is when a receiving end offers SASL EXTERNAL after TLS.
type ExternalOffer uint8

const (
	ExternalIfCertShown ExternalOffer = iota // the peer presented a certificate
	ExternalIfCertValid                      // the peer's certificate validated (Prosody)
	ExternalAlways                           // on every TLS stream (ejabberd)
)

// NoFeatures is what a receiving end does with nothing to offer after TLS.
type NoFeatures uint8

const (
	NoFeaturesSend  NoFeatures = iota // send empty features; the initiator decides
	NoFeaturesClose                   // <undefined-condition/> "No stream features to offer" (Prosody)
)

// NoMethod is how an initiating end gives up when no method is left.
type NoMethod uint8

const (
	NoMethodPolicyViolation    NoMethod = iota // <policy-violation/> at the sasl or dialback step
	NoMethodUnsupportedFeature                 // <unsupported-feature/> at the stream step (Prosody)
	NoMethodClose                              // closes the connection at the stream step (ejabberd)
)

// MissingTLS is what an initiating end does when TLS is required and
// cannot be had.
type MissingTLS uint8

const (
	MissingTLSGiveUp         MissingTLS = iota // a stream error at the starttls step
	MissingTLSGiveUpAtStream                   // the same stream error at the stream step (ejabberd)
	MissingTLSTry                              // sends <starttls/> although not offered (Prosody)
	MissingTLSWait                             // sends nothing and waits (jabberd2 with require_tls)
)

// UnofferedDialback is whether an initiating end sends db:result when
// the receiver did not advertise dialback.
type UnofferedDialback uint8

const (
	UnofferedDialbackSkip UnofferedDialback = iota
	UnofferedDialbackSend                   // Prosody, ejabberd, jabberd2
)

// Unverifiable is how a receiving end answers a db:result it could not
// verify.
type Unverifiable uint8

const (
	UnverifiableError          Unverifiable = iota // a dialback error naming why
	UnverifiableHang                               // no answer (Prosody)
	UnverifiableServerNotFound                     // <remote-server-not-found/> whatever the cause (ejabberd)
)

// PlainDialback is what a receiving end that requires TLS does with a
// db:result on a plain stream.
type PlainDialback uint8

const (
	PlainDialbackRefuse PlainDialback = iota // a dialback error, policy-violation
	PlainDialbackDrop                        // dropped without a word (jabberd2)
	// PlainDialbackVerifyThenClose: dialback is offered on every stream,
	// a db:result on a plain one is verified as any other, and once it is
	// valid the stream is closed with <policy-violation/> (Prosody 0.12:
	// mod_dialback offers dialback in every s2s-stream-features; mod_s2s's
	// make_authenticated closes an unencrypted session "Encrypted
	// server-to-server communication is required but was not used").
	PlainDialbackVerifyThenClose
	// PlainDialbackClose: the stream is closed with <policy-violation/>
	// rather than answered with a dialback error (ejabberd 23.01; recorded:
	// interop-ejabberd/db-result-on-the-plain-stream-to-an-ejabberd-that-requires-starttls;
	// on jabberd2's pre-1.0 stream too, though once in the federation
	// suite it verified the key instead: docs/federation.md).
	PlainDialbackClose
)

// Advertised says whether a receiver that requires TLS offers dialback
// on a plain stream all the same: those that drop or verify a db:result
// there do.
func (p PlainDialback) Advertised() bool {
	return p == PlainDialbackDrop || p == PlainDialbackVerifyThenClose
}

// RequiredMarker is whether <required/> marks STARTTLS when TLS is
// Required.
type RequiredMarker uint8

const (
	RequiredMarkerSend RequiredMarker = iota
	RequiredMarkerOmit                // jabberd2
)

// NoCertTLS is what a receiving end without a certificate does about
// STARTTLS.
type NoCertTLS uint8

const (
	NoCertTLSWithhold       NoCertTLS = iota // no STARTTLS offered
	NoCertTLSOfferAndFail                    // offered, and the handshake fails with handshake_failure (Prosody 0.12)
	NoCertTLSOfferAndRefuse                  // offered, and <starttls/> answered with <failure/> (ejabberd 23.01)
)

// VersionMismatch is what an end does when TLS versions do not work out.
type VersionMismatch uint8

const (
	VersionMismatchAlert VersionMismatch = iota // the protocol_version alert (crypto/tls, Prosody's LuaSec)
	// VersionMismatchClose: a ClientHello offering TLS 1.0 upwards; the
	// connection closed without an alert (ejabberd 23.01, jabberd2 2.7;
	// recorded: interop-ejabberd/a-partner-speaking-tls-1-0-and-1-1-only-as-old-gateways-do/forward
	// and …/reverse).
	VersionMismatchClose
	// VersionMismatchInternalError: a ClientHello offering TLS 1.0
	// upwards, as with close, but a version below what the end completes
	// is refused with the internal_error alert (ejabberd 24.12, fast_tls
	// 1.1.22: OpenSSL's "no suitable signature algorithm" below TLS 1.2,
	// said now rather than closed on; recorded:
	// interop-ejabberd-24/a-partner-speaking-tls-1-0-and-1-1-only-as-old-gateways-do/forward
	// and …/reverse).
	VersionMismatchInternalError
)

// DialbackOff is how a receiving end without dialback answers a
// db:result (real initiators send it unoffered).
type DialbackOff uint8

const (
	DialbackOffRefuse DialbackOff = iota // a dialback error, policy-violation (the harness)
	// DialbackOffNotAuthorized: the stream is closed with <not-authorized/>
	// (ejabberd 23.01 without mod_s2s_dialback; recorded:
	// federation/ejabberd.starttls-required--jabberd2.pemfile/b-to-a).
	DialbackOffNotAuthorized
	// DialbackOffUnsupportedStanzaType: the stream is closed with
	// <unsupported-stanza-type/> (Prosody 0.12 without mod_dialback;
	// recorded: federation/prosody.require-encryption--jabberd2.pemfile/b-to-a).
	DialbackOffUnsupportedStanzaType
)

// Condition is the stream error condition of a refusal, or "" for the
// dialback error.
func (d DialbackOff) streamError() string {
	switch d {
	case DialbackOffNotAuthorized:
		return "not-authorized"
	case DialbackOffUnsupportedStanzaType:
		return "unsupported-stanza-type"
	}
	return ""
}

// StreamError is the condition of the stream error a receiver without
// dialback closes with, or "" when it answers with a dialback error.
func (d DialbackOff) StreamError() string { return d.streamError() }

// UnofferedStartTLS is how a receiving end answers a <starttls/> it did
// not offer (Prosody sends it whatever the features say).
type UnofferedStartTLS uint8

const (
	UnofferedStartTLSFailure UnofferedStartTLS = iota // <failure/> and the stream closed (RFC 6120)
	// UnofferedStartTLSIgnore: no answer at all; the initiator is the one
	// to give up (jabberd2 2.7 without a certificate; recorded:
	// federation/prosody.require-encryption-dialback--jabberd2.no-pemfile/a-to-b).
	UnofferedStartTLSIgnore
)

// OffersFromTLS10 says whether an end that initiates offers every
// version from TLS 1.0 in its ClientHello, whatever it completes.
func (v VersionMismatch) OffersFromTLS10() bool {
	return v == VersionMismatchClose || v == VersionMismatchInternalError
}

// AnswerPings is how a receiving end answers stanzas.
type AnswerPings uint8

const (
	AnswerPingsAuto      AnswerPings = iota // same stream to the harness's own endpoints, else own stream
	AnswerPingsOwnStream                    // always over a stream of its own (real servers)
)

// knob is one Behaviour field as text: its spec key, the text of each
// of its values by the field's value (the zero value, the harness's
// own, first), a one-line doc, and how to read, write and parse the
// field. Parsing, BehaviourKeys, KnobKeys, KnobValues, Differences and
// Knobs all go through the table; a field that is not in it is no knob.
type knob struct {
	key    string
	values []string
	doc    string
	get    func(*Behaviour) uint8
	set    func(*Behaviour, uint8)
	parse  func(string) (uint8, error)
}

// choice is the knob of a field whose type has named values, listed in
// the constants' order.
func choice[T ~uint8](key string, values []string, doc string, field func(*Behaviour) *T) knob {
	return knob{key: key, values: values, doc: doc,
		get: func(b *Behaviour) uint8 { return uint8(*field(b)) },
		set: func(b *Behaviour, v uint8) { *field(b) = T(v) },
		parse: func(val string) (uint8, error) {
			for i, v := range values {
				if strings.EqualFold(strings.TrimSpace(val), v) {
					return uint8(i), nil
				}
			}
			return 0, fmt.Errorf("invalid value %q: accepted values are %s", val, strings.Join(values, ", "))
		}}
}

// yesNo is the knob of a bool field: false (the zero value) and true,
// read as ParseBool reads them ($true as PowerShell writes it, any case).
func yesNo(key, doc string, field func(*Behaviour) *bool) knob {
	return knob{key: key, values: []string{"false", "true"}, doc: doc,
		get: func(b *Behaviour) uint8 {
			if *field(b) {
				return 1
			}
			return 0
		},
		set: func(b *Behaviour, v uint8) { *field(b) = v == 1 },
		parse: func(val string) (uint8, error) {
			v, err := ParseBool(val)
			if v {
				return 1, err
			}
			return 0, err
		}}
}

var knobs = []knob{
	choice("refuse", []string{"handshake", "sasl", "after-tls"}, "when a receiver refuses an invalid client certificate",
		func(b *Behaviour) *Refusal { return &b.Refuse }),
	choice("refuse_server", []string{"handshake", "none", "after-tls", "close"}, "what an initiator does with an invalid server certificate",
		func(b *Behaviour) *ServerRefusal { return &b.RefuseServer }),
	choice("eku", []string{"server", "client", "any"}, "the extended key usage a receiver requires of a client certificate",
		func(b *Behaviour) *Purpose { return &b.EKU }),
	choice("external_offer", []string{"cert-shown", "cert-valid", "always"}, "when a receiver offers SASL EXTERNAL after TLS",
		func(b *Behaviour) *ExternalOffer { return &b.ExternalOffer }),
	choice("no_features", []string{"send", "close"}, "what a receiver does with nothing to offer after TLS",
		func(b *Behaviour) *NoFeatures { return &b.NoFeatures }),
	choice("no_method", []string{"policy-violation", "unsupported-feature", "close"}, "how an initiator gives up with no method left",
		func(b *Behaviour) *NoMethod { return &b.NoMethod }),
	choice("missing_tls", []string{"give-up", "give-up-at-stream", "try", "wait"}, "what an initiator does when TLS is required and cannot be had",
		func(b *Behaviour) *MissingTLS { return &b.MissingTLS }),
	choice("unoffered_dialback", []string{"skip", "send"}, "whether an initiator sends db:result when dialback is not advertised",
		func(b *Behaviour) *UnofferedDialback { return &b.UnofferedDialback }),
	choice("unverifiable", []string{"error", "hang", "remote-server-not-found"}, "how a receiver answers a db:result it could not verify",
		func(b *Behaviour) *Unverifiable { return &b.Unverifiable }),
	choice("plain_dialback", []string{"refuse", "drop", "verify-then-close", "close"}, "what a receiver that requires TLS does with db:result on a plain stream: a dialback error, nothing, verify it and close, or close with a stream error",
		func(b *Behaviour) *PlainDialback { return &b.PlainDialback }),
	choice("required_marker", []string{"send", "omit"}, "whether <required/> marks STARTTLS when TLS is Required",
		func(b *Behaviour) *RequiredMarker { return &b.RequiredMarker }),
	choice("answer_pings", []string{"auto", "own-stream"}, "how a receiver answers stanzas: on the same stream to the harness's endpoints, or over a stream of its own",
		func(b *Behaviour) *AnswerPings { return &b.AnswerPings }),
	choice("tls_min", tlsMinValues, "the lowest TLS version the end speaks",
		func(b *Behaviour) *TLSVersion { return &b.TLSMin }),
	choice("tls_max", tlsMaxValues, "the highest TLS version the end speaks",
		func(b *Behaviour) *TLSVersion { return &b.TLSMax }),
	choice("dialback_off", []string{"refuse", "not-authorized", "unsupported-stanza-type"}, "how a receiver without dialback answers a db:result: a dialback error, or the stream closed with that stream error",
		func(b *Behaviour) *DialbackOff { return &b.DialbackOff }),
	choice("unoffered_starttls", []string{"failure", "ignore"}, "how a receiver answers a <starttls/> it did not offer: <failure/>, or no answer at all",
		func(b *Behaviour) *UnofferedStartTLS { return &b.UnofferedStartTLS }),
	choice("version_mismatch", []string{"alert", "close", "internal-error"}, "what the end does when TLS versions do not work out: the protocol_version alert, or every version offered from TLS 1.0 and the connection closed without an alert, or with the internal_error alert",
		func(b *Behaviour) *VersionMismatch { return &b.VersionMismatch }),
	choice("bidi", []string{"false", "true", "wrong-namespace"}, "XEP-0288 bidirectional streams: none, as the XEP says, or offered in the request's namespace urn:xmpp:bidi (ejabberd 24.12)",
		func(b *Behaviour) *Bidi { return &b.Bidi }),
	choice("stream_limits", []string{"false", "true"}, "whether a receiver advertises XEP-0478 stream limits (max-bytes, idle-seconds) in its features, as Prosody 13 does",
		func(b *Behaviour) *StreamLimits { return &b.StreamLimits }),
	choice("channel_binding", []string{"false", "true"}, "whether a receiver advertises XEP-0440 SASL channel-binding types (tls-exporter, tls-server-end-point) beside its mechanisms on TLS streams, as ejabberd 24.12 does",
		func(b *Behaviour) *ChannelBinding { return &b.ChannelBinding }),
	choice("no_cert_tls", []string{"withhold", "offer-and-fail", "offer-and-refuse"}, "what a receiver without a certificate does about STARTTLS: offer none, offer it and fail the handshake, or offer it and answer <starttls/> with <failure/>",
		func(b *Behaviour) *NoCertTLS { return &b.NoCertTLS }),
	yesNo("legacy_streams", "whether an initiator opens streams with pre-1.0 headers and sends db:result at once",
		func(b *Behaviour) *bool { return &b.LegacyStreams }),
	yesNo("direct_tls", "whether the end listens for direct TLS (XEP-0368) and uses it as an initiator",
		func(b *Behaviour) *bool { return &b.DirectTLS }),
}

func lookupKnob(key string) (knob, bool) {
	for _, k := range knobs {
		if k.key == key {
			return k, true
		}
	}
	return knob{}, false
}

// BehaviourKeys lists the spec keys of the behaviour knobs with their
// values, the first being the harness's own.
func BehaviourKeys() []string {
	var out []string
	for _, k := range knobs {
		out = append(out, fmt.Sprintf("%s (%s): %s", k.key, strings.Join(k.values, "|"), k.doc))
	}
	return out
}

// KnobValues lists the values of the behaviour knob key, the harness's
// own first, or nil for a key that is not a knob.
func KnobValues(key string) []string {
	if k, ok := lookupKnob(key); ok {
		return slices.Clone(k.values)
	}
	return nil
}

// KnobKeys lists the spec keys of the behaviour knobs.
func KnobKeys() []string {
	var out []string
	for _, k := range knobs {
		out = append(out, k.key)
	}
	return out
}

// setKnob sets the knob key from its text.
func (b *Behaviour) setKnob(key, val string) (bool, error) {
	k, ok := lookupKnob(key)
	if !ok {
		return false, nil
	}
	v, err := k.parse(val)
	if err == nil {
		k.set(b, v)
	}
	return true, err
}

// Differences lists the knobs of b that differ from the harness's own
// behaviour, the zero Behaviour, as key=value, in a fixed order.
func (b Behaviour) Differences() []string {
	var out []string
	for _, k := range knobs {
		if v := k.get(&b); v != 0 {
			out = append(out, k.key+"="+k.values[v])
		}
	}
	return out
}

// KnobValue is one knob of a Behaviour as text.
type KnobValue struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Doc     string `json:"doc"`
	Default bool   `json:"default"` // the harness's own behaviour
}

// Knobs lists every knob of b with its value, in a fixed order, marking
// those where b behaves as the harness does by default (the zero value).
func (b Behaviour) Knobs() []KnobValue {
	var out []KnobValue
	for _, k := range knobs {
		v := k.get(&b)
		out = append(out, KnobValue{Key: k.key, Value: k.values[v], Doc: k.doc, Default: v == 0})
	}
	return out
}

// String lists the knobs that differ from the harness's own behaviour.
func (b Behaviour) String() string { return strings.Join(b.Differences(), ",") }

// Profile is a named, documented description of how a real
// implementation (or the documented Lync gateway) negotiates: its
// settings and its behaviour.
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Source      string `json:"source"` // version, configuration, document
	// Server is the server and version the profile was observed with,
	// as the process reported it, and the Debian suite it came from;
	// empty for a profile of no real server run here.
	Server   string   `json:"server,omitempty"`
	Settings Settings `json:"settings"`
}

// profiles are the shipped profiles.
var profiles = []Profile{
	{
		Name:        "xmppneg",
		Description: "this harness's reference behaviour: the Lync document's flexible setting C3 with the rules of RFC 6120, XEP-0178 (certificates checked as server certificates in both directions) and XEP-0220",
		Source:      "xmppneg; RFC 6120, XEP-0178 and its proposed update, XEP-0220",
		Settings:    DefaultSettings(),
	},
	{
		Name:        "prosody-0.12",
		Description: "Prosody 0.12 as Debian packages it: encryption required, dialback loaded, EXTERNAL offered only to a certificate that validates, never a handshake aborted over a certificate",
		Source:      "prosody 0.12.3 (Debian 12); s2s_require_encryption = true (default), s2s_secure_auth = false (default), mod_dialback; observed on loopback",
		Server:      "Prosody 0.12.3 (Debian bookworm)",
		Settings:    prosodySettings(false),
	},
	{
		Name:        "prosody-0.12-secure",
		Description: "Prosody 0.12 with the shipped example configuration: s2s_secure_auth, so a peer without a valid certificate is closed with <not-authorized/> right after TLS",
		Source:      "prosody 0.12.3 (Debian 12); /etc/prosody/prosody.cfg.lua example: s2s_secure_auth = true; observed on loopback",
		Server:      "Prosody 0.12.3 (Debian bookworm)",
		Settings:    prosodySettings(true),
	},
	{
		Name:        "prosody-13",
		Description: "Prosody 13 with its defaults: as 0.12 in every negotiation the sweeps make (encryption required, dialback loaded, EXTERNAL offered only to a certificate that validates), and it advertises XEP-0478 stream limits on every s2s stream",
		Source:      "prosody 13.0.1 (Debian bookworm-backports); s2s_require_encryption = true (default), s2s_secure_auth = false (default), mod_dialback, mod_s2s_bidi not loaded (Debian's config leaves it commented out); observed on loopback (interop-prosody-13)",
		Server:      "Prosody 13.0.1 (Debian bookworm-backports)",
		Settings:    Prosody13Settings(true, false, true, false),
	},
	{
		Name:        "prosody-13-secure",
		Description: "Prosody 13 with the configuration Debian ships: s2s_secure_auth, so a peer without a valid certificate is closed with <not-authorized/> right after TLS",
		Source:      "prosody 13.0.1 (Debian bookworm-backports); /etc/prosody/prosody.cfg.lua as shipped: s2s_secure_auth = true, \"limits\" enabled, \"s2s_bidi\" commented out; observed on loopback (interop-prosody-13)",
		Server:      "Prosody 13.0.1 (Debian bookworm-backports)",
		Settings:    Prosody13Settings(true, true, true, false),
	},
	{
		Name:        "ejabberd-23",
		Description: "ejabberd 23.01 as Debian packages it: no STARTTLS on s2s (\"for historical reasons\"), dialback loaded, EXTERNAL offered on every TLS stream and refused for a certificate without clientAuth",
		Source:      "ejabberd 23.01 (Debian 12); s2s_use_starttls: false (default), mod_s2s_dialback; observed on loopback",
		Server:      "ejabberd 23.01-1 (Debian bookworm)",
		Settings:    ejabberdSettings(NotSupported, true),
	},
	{
		Name:        "ejabberd-23-example",
		Description: "ejabberd 23.01 with the configuration Debian ships: STARTTLS required, dialback loaded, EXTERNAL refused for a certificate without clientAuth (\"unsupported certificate purpose\") and dialback tried next",
		Source:      "ejabberd 23.01 (Debian 12); /etc/ejabberd/ejabberd.yml as shipped (also /usr/share/doc/ejabberd/examples/ejabberd.yml): s2s_use_starttls: required, mod_s2s_dialback; upstream's example says optional; observed on loopback",
		Server:      "ejabberd 23.01-1 (Debian bookworm)",
		Settings:    ejabberdSettings(Required, true),
	},
	{
		Name:        "ejabberd-24",
		Description: "ejabberd 24.12 with its defaults: no STARTTLS on s2s, dialback loaded, EXTERNAL offered on every TLS stream and refused for a certificate without clientAuth, as 23.01; a TLS version it will not complete is refused with the internal_error alert where 23.01 closed the connection",
		Source:      "ejabberd 24.12 (Debian bookworm-backports); s2s_use_starttls: false (default), mod_s2s_dialback; observed on loopback (interop-ejabberd-24)",
		Server:      "ejabberd 24.12-3~bpo12+1 (Debian bookworm-backports)",
		Settings:    Ejabberd24Settings(NotSupported, true, false),
	},
	{
		Name:        "ejabberd-24-example",
		Description: "ejabberd 24.12 with the configuration Debian ships: STARTTLS required, dialback and mod_s2s_bidi (XEP-0288) loaded, EXTERNAL refused for a certificate without clientAuth and dialback tried next",
		Source:      "ejabberd 24.12 (Debian bookworm-backports); /usr/share/ejabberd/ejabberd.yml.example as shipped (also /usr/share/doc/ejabberd/examples/ejabberd.yml): s2s_use_starttls: required, mod_s2s_bidi, mod_s2s_dialback; observed on loopback (interop-ejabberd-24)",
		Server:      "ejabberd 24.12-3~bpo12+1 (Debian bookworm-backports)",
		Settings:    Ejabberd24Settings(Required, true, true),
	},
	{
		Name:        "jabberd2-2.7",
		Description: "jabberd2 2.7 with a certificate and verify-mode 0: STARTTLS offered (never marked required), never SASL EXTERNAL, dialback always, peers' certificates never checked",
		Source:      "jabberd2 2.7.0 (Debian 12); s2s.xml <local><pemfile>, <verify-mode>0</verify-mode>; observed on loopback",
		Server:      "jabberd2 2.7.0 (Debian bookworm)",
		Settings:    Jabberd2Settings(true, false),
	},
	{
		Name:        "lync2013-gateway",
		Description: "a Lync Server 2013 XMPP gateway partner entry with the documented defaults of New-CsXmppAllowedPartner: TLS Required, SASL Required, dialback True (the full matrix's M1: dialback does not operate)",
		Source:      "Microsoft, \"Negotiation settings for XMPP federated partners in Lync Server 2013\" (2015-03-09); New-CsXmppAllowedPartner defaults",
		Settings:    Settings{Policy: Policy{TLS: Required, SASL: Required, Dialback: true}, Cert: certs.Valid, Behaviour: Behaviour{Refuse: RefuseAtHandshake, RefuseServer: ServerRefusalHandshake}},
	},
	{
		Name:        "gtalk-legacy",
		Description: "Google Talk as Microsoft's own example partner: TCP Dialback only, no TLS (TLS NotSupported, SASL NotSupported, dialback True)",
		Source:      "Microsoft, Lync Server 2013 documentation, XMPP partner example for Google Talk",
		Settings:    Settings{Policy: Policy{TLS: NotSupported, SASL: NotSupported, Dialback: true}, Cert: certs.Missing, Behaviour: Behaviour{Refuse: RefuseAtSASL, RefuseServer: ServerRefusalNone}},
	},
}

// prosodySettings is Prosody 0.12's behaviour with encryption required,
// dialback loaded, and s2s_secure_auth as given.
func prosodySettings(secureAuth bool) Settings {
	return ProsodySettings(true, secureAuth, true)
}

// ProsodySettings is how Prosody 0.12 negotiates with the given knobs.
// Everything here was observed on loopback against Prosody 0.12.3.
func ProsodySettings(requireEncryption, secureAuth, dialback bool) Settings {
	s := Settings{Policy: Policy{TLS: Optional, SASL: Optional, Dialback: dialback}, Cert: certs.Valid, Behaviour: Behaviour{
		// Without s2s_secure_auth an invalid certificate only keeps
		// EXTERNAL from being offered, in both directions.
		Refuse:            RefuseAtSASL,
		RefuseServer:      ServerRefusalNone,
		EKU:               PurposeServer,
		ExternalOffer:     ExternalIfCertValid,
		NoFeatures:        NoFeaturesClose,
		NoMethod:          NoMethodUnsupportedFeature,
		MissingTLS:        MissingTLSTry,
		UnofferedDialback: UnofferedDialbackSend,
		// A db:result it cannot verify (its verify connection failed,
		// for whatever reason) is left unanswered.
		Unverifiable: UnverifiableHang,
		AnswerPings:  AnswerPingsOwnStream,
		// Dialback is offered on every stream, before TLS too, and a
		// db:result on a plain stream is verified before the stream is
		// closed for want of encryption (recorded:
		// interop-prosody/knobs/require-encryption+dialback/C1/harness-initiates,
		// interop-prosody/db-result-on-the-plain-stream-to-a-prosody-that-requires-encryption).
		PlainDialback:   PlainDialbackVerifyThenClose,
		VersionMismatch: VersionMismatchAlert,
		// Without a certificate it still offers STARTTLS and fails the
		// handshake, "no shared cipher" in its log (Prosody started on
		// a file whose host has none: scenarios/operators_real_test.go,
		// and interop-prosody/server-certificates with cert=missing).
		NoCertTLS: NoCertTLSOfferAndFail,
		// Without mod_dialback a db:result is an element it does not
		// know (recorded: federation/prosody.require-encryption--jabberd2.pemfile/b-to-a).
		DialbackOff: DialbackOffUnsupportedStanzaType,
	}}
	if requireEncryption || secureAuth {
		// Its own outbound and verify connections need TLS as well.
		s.TLS = Required
	}
	if secureAuth {
		s.Refuse, s.RefuseServer = RefuseAfterTLS, ServerRefusalAfterTLS
	}
	return s
}

// ejabberdSettings is ejabberd 23.01's behaviour.
func ejabberdSettings(tls Level, dialback bool) Settings { return EjabberdSettings(tls, dialback) }

// EjabberdSettings is how ejabberd 23.01 negotiates with s2s_use_starttls
// false (NotSupported), optional or required, and mod_s2s_dialback as
// given. Observed on loopback against ejabberd 23.01.
func EjabberdSettings(tls Level, dialback bool) Settings {
	s := Settings{Policy: Policy{TLS: tls, SASL: Optional, Dialback: dialback}, Cert: certs.Valid, Behaviour: Behaviour{
		// An invalid certificate is refused at <auth>, and dialback
		// may follow.
		Refuse:            RefuseAtSASL,
		RefuseServer:      ServerRefusalNone,
		EKU:               PurposeClient,
		ExternalOffer:     ExternalAlways,
		NoMethod:          NoMethodClose,
		MissingTLS:        MissingTLSGiveUpAtStream,
		UnofferedDialback: UnofferedDialbackSend,
		Unverifiable:      UnverifiableServerNotFound,
		AnswerPings:       AnswerPingsOwnStream,
		VersionMismatch:   VersionMismatchClose,
		PlainDialback:     PlainDialbackClose,
		// Without certfiles it answered <starttls/> with <failure/> in
		// the first streams after its start, and later presented a
		// self-signed certificate it made itself (interop runs with
		// cert=missing): it is not long without one, and this is what
		// it does until it has one (unpinned, see recorded_test.go).
		NoCertTLS: NoCertTLSOfferAndRefuse,
		// Without mod_s2s_dialback a db:result closes the stream with
		// <not-authorized/> (recorded:
		// federation/ejabberd.starttls-required--jabberd2.pemfile/b-to-a).
		DialbackOff: DialbackOffNotAuthorized,
	}}
	if !dialback {
		// Without dialback to fall back to, its outbound streams verify
		// the receiver's certificate and hang up on a bad one.
		s.RefuseServer = ServerRefusalClose
	}
	return s
}

// Jabberd2Settings is how jabberd2 2.7 negotiates, with a certificate
// (pemfile) or without, and with require_tls as given.
func Jabberd2Settings(pemfile, requireTLS bool) Settings {
	s := Settings{Policy: Policy{TLS: Optional, SASL: NotSupported, Dialback: true}, Cert: certs.Valid, Behaviour: Behaviour{
		// verify-mode 0: peers' certificates are never checked.
		Refuse:            RefuseAtSASL,
		RefuseServer:      ServerRefusalNone,
		UnofferedDialback: UnofferedDialbackSend,
		RequiredMarker:    RequiredMarkerOmit,
		AnswerPings:       AnswerPingsOwnStream,
		// When its verify connection fails it never tells the waiting
		// inbound stream.
		Unverifiable:    UnverifiableHang,
		VersionMismatch: VersionMismatchClose,
	}}
	// A db:result on a plain stream, where TLS is required, is dropped
	// without a word (with require_tls; the knob applies to nothing else).
	s.PlainDialback = PlainDialbackDrop
	if requireTLS {
		s.TLS = Required
		s.MissingTLS = MissingTLSWait
	}
	if !pemfile {
		s.TLS, s.Cert, s.LegacyStreams = NotSupported, certs.Missing, true
		// Without TLS it leaves a <starttls/> unanswered (recorded:
		// federation/prosody.require-encryption-dialback--jabberd2.no-pemfile/a-to-b).
		s.UnofferedStartTLS = UnofferedStartTLSIgnore
	}
	return s
}

// Profiles lists the shipped profiles.
func Profiles() []Profile { return append([]Profile{}, profiles...) }

// LookupProfile returns the profile named name.
func LookupProfile(name string) (Profile, error) {
	var names []string
	for _, p := range profiles {
		if strings.EqualFold(p.Name, strings.TrimSpace(name)) {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Profile{}, fmt.Errorf("unknown profile %q: accepted values are %s", name, strings.Join(names, ", "))
}

// Prosody13Settings is how Prosody 13 negotiates with the given knobs,
// mod_s2s_bidi (XEP-0288) loaded or not. Where it is written the same as
// Prosody 0.12's, a recorded negotiation of interop-prosody-13 shows it.
func Prosody13Settings(requireEncryption, secureAuth, dialback, bidi bool) Settings {
	s := ProsodySettings(requireEncryption, secureAuth, dialback)
	// XEP-0478 limits on every s2s stream's features, its own defaults
	// (recorded: every negotiation of interop-prosody-13).
	s.StreamLimits = StreamLimitsProsody
	if bidi {
		// mod_s2s_bidi: XEP-0288 as the XEP says it (recorded:
		// interop-prosody-13/knobs/require-encryption+dialback+bidi/…).
		s.Bidi = BidiXEP
	}
	return s
}

// Ejabberd24Settings is how ejabberd 24.12 negotiates with
// s2s_use_starttls and mod_s2s_dialback as given, mod_s2s_bidi loaded or
// not. Where it is written the same as ejabberd 23.01's, a recorded
// negotiation of interop-ejabberd-24 shows it.
func Ejabberd24Settings(tls Level, dialback, bidi bool) Settings {
	s := EjabberdSettings(tls, dialback)
	// A TLS version it will not complete is refused with the
	// internal_error alert where 23.01 closed the connection (recorded:
	// interop-ejabberd-24/a-partner-speaking-tls-1-0-and-1-1-only-as-old-gateways-do/forward
	// and …/reverse; its log: "no suitable signature algorithm").
	s.VersionMismatch = VersionMismatchInternalError
	// XEP-0440's channel-binding types beside EXTERNAL on every TLS
	// stream (recorded: every TLS negotiation of interop-ejabberd-24).
	s.ChannelBinding = ChannelBindingEjabberd
	if bidi {
		// mod_s2s_bidi offers <bidi xmlns='urn:xmpp:bidi'/>, the
		// request's namespace, as its feature, on every stream (recorded:
		// interop-ejabberd-24/knobs/starttls-optional+dialback+bidi/…).
		s.Bidi = BidiWrongNamespace
	}
	return s
}
