package sim

import (
	"fmt"
	"strconv"
	"strings"

	"xmppneg/policy"
)

// features is what a receiving end offers on one stream, as it writes
// <stream:features/> and as the initiating end reads it back. Which
// feature is offered when, and how each is used, is decided in the file
// of the feature: starttls.go, sasl.go, dialback.go.
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
	// It is no method: it does not count for empty.
	Bidi string
	// Limits are XEP-0478 stream limits, when advertised.
	Limits *streamLimits
	// ChannelBindings are the XEP-0440 channel-binding types advertised
	// beside the SASL mechanisms (ejabberd 24.12: tls-exporter,
	// tls-server-end-point). EXTERNAL binds nothing; they are shown.
	ChannelBindings []string
}

// ejabberdChannelBindings are what ejabberd 24.12 advertises on every
// TLS stream before authentication (recorded: interop-ejabberd-24).
var ejabberdChannelBindings = []string{"tls-exporter", "tls-server-end-point"}

// streamLimits are a receiver's XEP-0478 limits: the largest stanza it
// accepts and how long it lets a stream idle (0: not said).
type streamLimits struct {
	MaxBytes, IdleSeconds int
}

// bidiRequest says whether an initiating end with settings p asks for a
// bidirectional stream (XEP-0288) on a stream whose features are f: with
// bidi=true where XEP-0288's feature is offered, on a stream that is
// encrypted or needs not be (Prosody 13's mod_s2s_bidi); with
// bidi=wrong-namespace where <bidi/> is offered in urn:xmpp:bidi
// (ejabberd 24.12's mod_s2s_bidi).
func bidiRequest(p policy.Settings, f features, secure bool) bool {
	switch p.Bidi {
	case policy.BidiXEP:
		return f.Bidi == nsBidiFeat && (secure || p.TLS != policy.Required)
	case policy.BidiWrongNamespace:
		return f.Bidi == nsBidi
	}
	return false
}

// prosodyLimits are what Prosody 13 advertises with its defaults
// (s2s_stanza_size_limit 512 KiB, and an idle time of 840 s; seen on
// every s2s stream of interop-prosody-13).
var prosodyLimits = streamLimits{MaxBytes: 524288, IdleSeconds: 840}

func (l *streamLimits) xml() string {
	var b strings.Builder
	b.WriteString("<limits xmlns='" + nsStreamLimits + "'>")
	if l.MaxBytes > 0 {
		fmt.Fprintf(&b, "<max-bytes>%d</max-bytes>", l.MaxBytes)
	}
	if l.IdleSeconds > 0 {
		fmt.Fprintf(&b, "<idle-seconds>%d</idle-seconds>", l.IdleSeconds)
	}
	b.WriteString("</limits>")
	return b.String()
}

// empty reports whether nothing is offered.
func (f features) empty() bool { return !f.StartTLS && len(f.Mechanisms) == 0 && !f.Dialback }

func (f features) has(mech string) bool {
	for _, m := range f.Mechanisms {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

func (f features) xml() string {
	if f.empty() && f.Mechanisms == nil && f.Bidi == "" && f.Limits == nil && len(f.ChannelBindings) == 0 {
		return "<stream:features/>"
	}
	var b strings.Builder
	b.WriteString("<stream:features>")
	if f.StartTLS {
		b.WriteString("<starttls xmlns='" + nsTLS + "'>")
		if f.TLSRequired {
			b.WriteString("<required/>")
		}
		b.WriteString("</starttls>")
	}
	if f.Mechanisms != nil {
		b.WriteString("<mechanisms xmlns='" + nsSASL + "'>")
		for _, m := range f.Mechanisms {
			b.WriteString("<mechanism>" + esc(m) + "</mechanism>")
		}
		b.WriteString("</mechanisms>")
	}
	if len(f.ChannelBindings) > 0 {
		b.WriteString("<sasl-channel-binding xmlns='" + nsSASLCB + "'>")
		for _, t := range f.ChannelBindings {
			b.WriteString("<channel-binding type='" + esc(t) + "'/>")
		}
		b.WriteString("</sasl-channel-binding>")
	}
	if f.Dialback {
		b.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
	}
	if f.Bidi != "" {
		b.WriteString("<bidi xmlns='" + f.Bidi + "'/>")
	}
	if f.Limits != nil {
		b.WriteString(f.Limits.xml())
	}
	b.WriteString("</stream:features>")
	return b.String()
}

// String lists the features as a person reads them:
// "starttls (required), SASL EXTERNAL, dialback".
func (f features) String() string {
	var parts []string
	if f.StartTLS {
		p := "starttls"
		if f.TLSRequired {
			p += " (required)"
		}
		parts = append(parts, p)
	}
	if len(f.Mechanisms) > 0 {
		parts = append(parts, "SASL "+strings.Join(f.Mechanisms, " "))
	}
	if f.Dialback {
		parts = append(parts, "dialback")
	}
	if len(f.ChannelBindings) > 0 {
		parts = append(parts, "channel binding "+strings.Join(f.ChannelBindings, " ")+" (XEP-0440)")
	}
	switch f.Bidi {
	case nsBidiFeat:
		parts = append(parts, "bidi (XEP-0288)")
	case "":
	default:
		parts = append(parts, "bidi (XEP-0288, in "+f.Bidi+")")
	}
	if f.Limits != nil {
		parts = append(parts, fmt.Sprintf("limits (XEP-0478: max-bytes %d, idle-seconds %d)", f.Limits.MaxBytes, f.Limits.IdleSeconds))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func parseFeatures(el *element) features {
	var f features
	if st := el.child(nsTLS, "starttls"); st != nil {
		f.StartTLS = true
		f.TLSRequired = st.child("", "required") != nil
	}
	if ms := el.child(nsSASL, "mechanisms"); ms != nil {
		f.Mechanisms = []string{}
		for _, m := range ms.Children {
			if m.Name.Local == "mechanism" {
				f.Mechanisms = append(f.Mechanisms, strings.TrimSpace(m.Text))
			}
		}
	}
	if db := el.child(nsDialbackFeat, "dialback"); db != nil {
		f.Dialback = true
		f.DialbackErrors = db.child("", "errors") != nil
	}
	if cb := el.child(nsSASLCB, "sasl-channel-binding"); cb != nil {
		for _, t := range cb.Children {
			if t.Name.Local == "channel-binding" && len(f.ChannelBindings) < 8 {
				f.ChannelBindings = append(f.ChannelBindings, t.attr("type"))
			}
		}
	}
	for _, ns := range []string{nsBidiFeat, nsBidi} {
		if el.child(ns, "bidi") != nil {
			f.Bidi = ns
			break
		}
	}
	if l := el.child(nsStreamLimits, "limits"); l != nil {
		f.Limits = &streamLimits{}
		// A value that is not a number is as if not said: the limit is
		// then unknown, never taken as 0 or as huge.
		if m := l.child("", "max-bytes"); m != nil {
			f.Limits.MaxBytes, _ = strconv.Atoi(strings.TrimSpace(m.Text))
		}
		if m := l.child("", "idle-seconds"); m != nil {
			f.Limits.IdleSeconds, _ = strconv.Atoi(strings.TrimSpace(m.Text))
		}
	}
	return f
}
