package sim

import "strings"

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
	if f.empty() && f.Mechanisms == nil {
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
	if f.Dialback {
		b.WriteString("<dialback xmlns='" + nsDialbackFeat + "'><errors/></dialback>")
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
	return f
}
