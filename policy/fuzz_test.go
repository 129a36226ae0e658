package policy

import "testing"

// FuzzParseSpec: any input either parses into settings that print back to
// the same settings, or is an error; nothing panics.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"", "tls=Required,sasl=Optional,dialback=true", "tls=지원 안 됨,cert=expired,strict=$false",
		"tls", "tls=Required,tls=Optional", "secret=a=b", ",,,", "TLS = optional , Dialback = $TRUE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSpec(spec)
		if err != nil {
			return
		}
		back, err := ParseSpec(s.String())
		if err != nil {
			t.Fatalf("%q parsed to %v, which does not parse back: %v", spec, s, err)
		}
		s.Secret = ""
		if back != s {
			t.Fatalf("%q: %v printed back as %v", spec, s, back)
		}
	})
}
