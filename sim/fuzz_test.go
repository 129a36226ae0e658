package sim

import (
	"encoding/xml"
	"strings"
	"testing"
)

// FuzzReadElement feeds arbitrary bytes after a valid stream header to the
// readers the negotiation uses for features, SASL and dialback elements:
// they return an element or an error, within the limits; nothing panics.
func FuzzReadElement(f *testing.F) {
	for _, s := range []string{
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
		"<db:result from='a.test' to='b.test' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
		"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>no</text></failure>",
		"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
		"</stream:stream>", "<a><b></a>", strings.Repeat("<x>", 40), "<x a='1' a='2'/>", "&bogus;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		d := xml.NewDecoder(strings.NewReader(headerXML("a.test", "b.test", "id1") + body))
		if _, err := readHeader(d); err != nil {
			t.Fatalf("the header itself did not parse: %v", err)
		}
		for i := 0; i < 8; i++ {
			el, err := readElement(d, DefaultLimits)
			if err != nil {
				return
			}
			_ = parseFeatures(el)
			_, _ = el.condition(nsStreamErr)
			_ = el.attr("type")
		}
	})
}
