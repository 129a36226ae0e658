package sim

import (
	"encoding/xml"
	"strings"

	"xmppneg/policy/outcome"
)

// features is what a receiving end offers on one stream, as it writes
// <stream:features/> and as the initiating end reads it back. Each
// field belongs to one streamFeature, which alone sets, lists, parses
// and describes it.
type features struct {
	StartTLS    bool
	TLSRequired bool
	// Mechanisms are the SASL mechanisms listed; an empty list that is
	// not nil is an empty <mechanisms/>, nil none at all.
	Mechanisms     []string
	Dialback       bool
	DialbackErrors bool
	// Bidi is the namespace of an offered XEP-0288 <bidi/>: nsBidiFeat
	// as the XEP says, nsBidi as ejabberd 24.12 offers it; "" for none.
	Bidi string
	// Limits are XEP-0478 stream limits, when advertised.
	Limits *streamLimits
	// ChannelBindings are the XEP-0440 channel-binding types advertised
	// beside the SASL mechanisms (ejabberd 24.12: tls-exporter,
	// tls-server-end-point). EXTERNAL binds nothing; they are shown.
	ChannelBindings []string
}

// A streamFeature is one feature of <stream:features/>, in the manner
// of mellium's xmpp.StreamFeature: when a receiving end offers it, how
// it lists it, how an initiating end parses it, how a person reads it,
// and, for an authentication method, how both ends negotiate it. Each
// is a value in the file of its protocol (starttls.go, sasl.go,
// dialback.go, extensions.go); the roles iterate streamFeatures and
// name no feature in their loops.
type streamFeature struct {
	// names are the feature's element in <stream:features/>; the first
	// one found is parsed (XEP-0288's <bidi/> comes in two namespaces).
	names []xml.Name
	// offer sets in f what the receiving end rs offers of the feature on
	// its current stream, from its own settings and what happened on the
	// stream; authenticated is set on the stream restarted after SASL.
	offer func(rs *receiverState, authenticated bool, f *features)
	// list writes the feature's element into <stream:features/> when f
	// has it, nothing otherwise.
	list func(b *strings.Builder, f features)
	// parse reads the feature's element el, as a peer listed it, into f.
	parse func(el *element, f *features)
	// describe is the feature in f as a person reads it, "" when f has
	// none of it.
	describe func(f features) string
	// offered says whether f offers the feature for negotiation. It is
	// nil for a feature that is only said (channel binding, bidi,
	// limits): those are described after the others, and a receiver
	// that has only them to offer offers nothing.
	offered func(f features) bool
	// auth is set on an authentication method.
	auth *authMethod
}

// An authMethod is how both ends negotiate a feature that
// authenticates the initiating end.
type authMethod struct {
	// step is where the method happens, and where the initiator fails
	// when it is the first one offered and none can be used.
	step outcome.Step
	// request is the element with which the initiator asks for it.
	request xml.Name
	// choose says whether the initiating end hs uses it, from its own
	// settings and the offer it read, and why not when it does not: ""
	// when the end does not do the method at all, so that a method off
	// by default changes no other negotiation's message.
	choose func(hs *initiatorState) (use bool, whyNot string)
	// negotiate runs it as the initiating end. It returns the method
	// the stream is authenticated with, or 0 and no error when the
	// receiver refused it (recorded) and the next method may be tried.
	negotiate func(hs *initiatorState) (outcome.Method, error)
	// refused is why it was not used, once the receiver refused it.
	refused string
	// serve answers request as the receiving end: whether the initiator
	// is authenticated, or false and no error when the attempt was
	// refused and the initiator may try again on the same stream.
	serve func(rs *receiverState, el *element) (authenticated bool, err error)
}

// streamFeatures are the features an end of this harness knows, in the
// order a receiving end lists them. The authentication methods among
// them are also in the order of preference in which an initiating end
// tries them; dialback, the fallback, stays last (see failStep). (Set in init: the features' functions reach this table
// through the roles, which would be an initialization cycle.)
var streamFeatures []*streamFeature

func init() {
	streamFeatures = []*streamFeature{&startTLSFeature, &saslFeature, &channelBindingFeature, &dialbackFeature, &bidiFeature, &limitsFeature}
}

// requestedMethod is the authentication method that el asks for, or
// nil when el asks for none.
func requestedMethod(el *element) *authMethod {
	for _, sf := range streamFeatures {
		if sf.auth != nil && el.is(sf.auth.request.Space, sf.auth.request.Local) {
			return sf.auth
		}
	}
	return nil
}

// failStep is the step at which an initiator that can use no method of
// the offer f fails: that of the first method offered, or of the last
// method when none is.
func failStep(f features) outcome.Step {
	var step outcome.Step
	for _, sf := range streamFeatures {
		if sf.auth == nil {
			continue
		}
		if sf.offered(f) {
			return sf.auth.step
		}
		step = sf.auth.step
	}
	return step
}

// empty reports whether nothing is offered for negotiation.
func (f features) empty() bool {
	for _, sf := range streamFeatures {
		if sf.offered != nil && sf.offered(f) {
			return false
		}
	}
	return true
}

func (f features) has(mech string) bool {
	for _, m := range f.Mechanisms {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// xml is <stream:features/> listing f.
func (f features) xml() string {
	var body strings.Builder
	for _, sf := range streamFeatures {
		sf.list(&body, f)
	}
	if body.Len() == 0 {
		return "<stream:features/>"
	}
	return "<stream:features>" + body.String() + "</stream:features>"
}

// String lists the features as a person reads them, those offered for
// negotiation first: "starttls (required), SASL EXTERNAL, dialback".
func (f features) String() string {
	var parts []string
	for _, said := range []bool{false, true} {
		for _, sf := range streamFeatures {
			if (sf.offered == nil) != said {
				continue
			}
			if d := sf.describe(f); d != "" {
				parts = append(parts, d)
			}
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// parseFeatures reads <stream:features/> as a peer sent it.
func parseFeatures(el *element) features {
	var f features
	for _, sf := range streamFeatures {
		for _, n := range sf.names {
			if ch := el.child(n.Space, n.Local); ch != nil {
				sf.parse(ch, &f)
				break
			}
		}
	}
	return f
}
