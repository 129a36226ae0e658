package domain

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	for _, d := range []string{"example.com", "a.example", "xmpp.bücher.example", "xn--bcher-kva.example", "localhost", "1.2.3.4"} {
		assert.NoError(t, Check(d), d)
	}
	for _, d := range []string{
		"", "../../../tmp/x/evil", "a/b", `a\b`, "..", ".", "a..b", ".a", "a.", "a b", "a\nb", "a\x00b", "\x1b[31m.example",
		"ps1.example’;Restart-Computer -Force;#", "ps1.example';x", "a`b.example", "a:b", "\xff.example", "-a.example",
		strings.Repeat("a.", 127) + "ab",
	} {
		err := Check(d)
		require.Error(t, err, "%q", d)
		assert.Contains(t, err.Error(), fmt.Sprintf("%q", d), "the error names the input")
	}
}

func TestFileName(t *testing.T) {
	got, err := FileName("a.example", ".key")
	require.NoError(t, err)
	assert.Equal(t, "a.example.key", got)
	for _, d := range []string{"../../../tmp/x/evil", "..", "a/b", ""} {
		_, err := FileName(d, ".crt")
		assert.Error(t, err, d)
	}
	_, err = FileName("a.example", "/../x")
	assert.Error(t, err)
}

func ExampleCheck() {
	fmt.Println(Check("xmpp.example.org"))
	fmt.Println(Check("../../../tmp/x/evil"))
	// Output:
	// <nil>
	// invalid domain "../../../tmp/x/evil": a path separator ('/') is not part of a domain
}
