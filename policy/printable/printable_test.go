package printable

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a.test", "a.test"},
		{"café.test", "café.test"},
		{"x\nb.test → a.test: authenticated", `x\nb.test → a.test: authenticated`},
		{"\x1b[2J\x1b]0;title\x07", `\x1b[2J\x1b]0;title\x07`},
		{"a\rb\tc", `a\rb\tc`},
		{"c1\u0085\u009b", `c1\x85\x9b`},
		{"bidi\u202eexe.txt", `bidi\u202eexe.txt`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"del\x7f", `del\x7f`},
		{"line\u2028sep", `line\u2028sep`},
	} {
		assert.Equal(t, tc.want, String(tc.in), "%q", tc.in)
	}
}

func TestBlockKeepsLinesAndTabs(t *testing.T) {
	assert.Equal(t, "<a>\n\t<b/>\n</a>", Block("<a>\n\t<b/>\n</a>"))
	assert.Equal(t, `<a>\r\x1b[1A</a>`, Block("<a>\r\x1b[1A</a>"))
}

func ExampleString() {
	fmt.Println(String("evil.test\n\x1b[32mharness.test: authenticated"))
	// Output: evil.test\n\x1b[32mharness.test: authenticated
}
