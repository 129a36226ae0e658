package lyncpartner

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: whatever a partner list holds, Parse returns entries or an
// error, never panics, and every entry it returns has a domain.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"partners.ps1", "partners.txt", "partners.csv", "partners.json"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "scenarios", "examples", name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("New-CsXmppAllowedPartner a.example -Tls:Optional -AdditionalDomains @{Add='b.example'}"))
	f.Add([]byte(`{"Identity": {"Value": "a.example"}, "TlsNegotiation": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := Parse("f", data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Domain == "" || checkDomain(e.Domain) != nil {
				t.Fatalf("entry without a valid domain: %+v", e)
			}
		}
	})
}
