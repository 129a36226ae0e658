package scenarios

import (
	"strings"
	"testing"
)

// FuzzParse: a scenario file either loads or is an error naming the file;
// nothing panics.
func FuzzParse(f *testing.F) {
	// pairwise is left out: its 25272 cases make every execution slow.
	for _, name := range []string{"lync2013", "failures", "interop-prosody"} {
		b, _ := shipped.ReadFile(name + ".yaml")
		f.Add(string(b))
	}
	f.Add("suite: x\nscenarios:\n  - name: a\n    initiator: {domain: a.test}\n    receiver: {domain: b.test}\n    expect: fail\n")
	f.Add("suite: [\n")
	f.Add("sweeps:\n  - name: s\n    rows: [M1, M99]\n")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := Parse("fuzz.yaml", []byte(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, c := range s.Cases {
			if c.Initiator.Domain == c.Receiver.Domain {
				t.Fatalf("case %s has the same domain on both sides", c.ID)
			}
		}
	})
}
