package sim

import (
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"xmppneg/policy"
)

// The features a receiving end only says, which negotiate nothing:
// XEP-0440's channel-binding types, XEP-0288's <bidi/> and XEP-0478's
// limits. Real servers of 2026 list them, and what an initiator does
// with them (a bidi request, a stanza kept within max-bytes) changes
// what it sends.

// channelBindingFeature is XEP-0440's <sasl-channel-binding/>, listed
// beside the SASL mechanisms on a TLS stream as ejabberd 24.12 does
// (channel_binding=ejabberd).
var channelBindingFeature = streamFeature{
	names: []xml.Name{{Space: nsSASLCB, Local: "sasl-channel-binding"}},
	offer: func(rs *receiverState, authenticated bool, f *features) {
		c := rs.c
		if authenticated || !c.secure || f.Mechanisms == nil || c.ep.cfg.Settings.ChannelBinding != policy.ChannelBindingEjabberd {
			return
		}
		f.ChannelBindings = ejabberdChannelBindings
		if cs := c.tlsState(); cs != nil && cs.Version <= tls.VersionTLS12 {
			// tls-unique exists below TLS 1.3 only; ejabberd 24.12 adds
			// it there (recorded:
			// interop-ejabberd-24/a-partner-speaking-tls-1-2-at-most/forward).
			f.ChannelBindings = append(slices.Clip(ejabberdChannelBindings), "tls-unique")
		}
	},
	list: func(b *strings.Builder, f features) {
		if len(f.ChannelBindings) == 0 {
			return
		}
		b.WriteString("<sasl-channel-binding xmlns='" + nsSASLCB + "'>")
		for _, t := range f.ChannelBindings {
			b.WriteString("<channel-binding type='" + esc(t) + "'/>")
		}
		b.WriteString("</sasl-channel-binding>")
	},
	parse: func(el *element, f *features) {
		for _, t := range el.Children {
			if t.Name.Local == "channel-binding" && len(f.ChannelBindings) < 8 {
				f.ChannelBindings = append(f.ChannelBindings, t.attr("type"))
			}
		}
	},
	describe: func(f features) string {
		if len(f.ChannelBindings) == 0 {
			return ""
		}
		return "channel binding " + strings.Join(f.ChannelBindings, " ") + " (XEP-0440)"
	},
}

// ejabberdChannelBindings are what ejabberd 24.12 advertises on every
// TLS stream before authentication (recorded: interop-ejabberd-24).
var ejabberdChannelBindings = []string{"tls-exporter", "tls-server-end-point"}

// bidiFeature is XEP-0288's <bidi/>. An initiator that takes it asks
// with a request that has no answer (bidiRequest, in openStream).
var bidiFeature = streamFeature{
	names: []xml.Name{{Space: nsBidiFeat, Local: "bidi"}, {Space: nsBidi, Local: "bidi"}},
	offer: func(rs *receiverState, authenticated bool, f *features) {
		f.Bidi = bidiOffer(rs.c.ep.cfg.Settings, rs.c.secure, authenticated)
	},
	list: func(b *strings.Builder, f features) {
		if f.Bidi != "" {
			b.WriteString("<bidi xmlns='" + f.Bidi + "'/>")
		}
	},
	parse: func(el *element, f *features) { f.Bidi = el.Name.Space },
	describe: func(f features) string {
		switch f.Bidi {
		case "":
			return ""
		case nsBidiFeat:
			return "bidi (XEP-0288)"
		}
		return "bidi (XEP-0288, in " + f.Bidi + ")"
	},
}

// bidiOffer is the namespace of the XEP-0288 <bidi/> the receiving end
// offers on a stream, or "". With bidi=true it is offered, as Prosody 13's
// mod_s2s_bidi does, before authentication on a stream that is encrypted
// or needs not be; with bidi=wrong-namespace, as ejabberd 24.12's
// mod_s2s_bidi does, in urn:xmpp:bidi on every stream, before and after
// authentication (recorded: interop-ejabberd-24).
func bidiOffer(p policy.Settings, secure, authenticated bool) string {
	switch p.Bidi {
	case policy.BidiXEP:
		if !authenticated && (secure || p.TLS != policy.Required) {
			return nsBidiFeat
		}
	case policy.BidiWrongNamespace:
		return nsBidi
	}
	return ""
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

// limitsFeature is XEP-0478's <limits/>. An initiator keeps what it
// sends within the max-bytes it read (initiatorState.withinLimits).
var limitsFeature = streamFeature{
	names: []xml.Name{{Space: nsStreamLimits, Local: "limits"}},
	offer: func(rs *receiverState, _ bool, f *features) {
		f.Limits = limitsOffer(rs.c.ep.cfg.Settings)
	},
	list: func(b *strings.Builder, f features) {
		if f.Limits != nil {
			b.WriteString(f.Limits.xml())
		}
	},
	parse: func(el *element, f *features) {
		f.Limits = &streamLimits{}
		// A value that is not a number is as if not said: the limit is
		// then unknown, never taken as 0 or as huge.
		if m := el.child("", "max-bytes"); m != nil {
			f.Limits.MaxBytes, _ = strconv.Atoi(strings.TrimSpace(m.Text))
		}
		if m := el.child("", "idle-seconds"); m != nil {
			f.Limits.IdleSeconds, _ = strconv.Atoi(strings.TrimSpace(m.Text))
		}
	},
	describe: func(f features) string {
		if f.Limits == nil {
			return ""
		}
		return fmt.Sprintf("limits (XEP-0478: max-bytes %d, idle-seconds %d)", f.Limits.MaxBytes, f.Limits.IdleSeconds)
	},
}

// streamLimits are a receiver's XEP-0478 limits: the largest stanza it
// accepts and how long it lets a stream idle (0: not said).
type streamLimits struct {
	MaxBytes, IdleSeconds int
}

// prosodyLimits are what Prosody 13 advertises with its defaults
// (s2s_stanza_size_limit 512 KiB, and an idle time of 840 s; seen on
// every s2s stream of interop-prosody-13).
var prosodyLimits = streamLimits{MaxBytes: 524288, IdleSeconds: 840}

// limitsOffer is what the receiving end advertises of XEP-0478, or nil.
func limitsOffer(p policy.Settings) *streamLimits {
	if p.StreamLimits == policy.StreamLimitsNone {
		return nil
	}
	l := prosodyLimits
	return &l
}

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
