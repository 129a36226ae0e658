// Package printable makes text that a peer controls safe to print: a
// stream header's address, a certificate's subject, the XML a server
// sent. Control characters (which move the cursor, end lines, or drive
// a terminal), Unicode format characters (which reorder what is shown)
// and bytes that are not UTF-8 are written as Go-style escapes, so that
// no peer can forge a line of xmppneg's output or reach the terminal.
package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every control character, line ends and tabs
// included, written as an escape: for text printed on one line.
func String(s string) string { return escape(s, false) }

// Block returns s with every control character except newline and tab
// written as an escape: for text printed as lines of its own, such as
// XML (the printer indents what follows a newline).
func Block(s string) string { return escape(s, true) }

func escape(s string, lines bool) string {
	if clean(s, lines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case lines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x100 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clean reports whether s needs no escape, quickly for the usual ASCII.
func clean(s string, lines bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return cleanUnicode(s[i:], lines)
		case c == 0x7f:
			return false
		case c < 0x20 && !(lines && (c == '\n' || c == '\t')):
			return false
		}
	}
	return true
}

func cleanUnicode(s string, lines bool) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return false
			}
		}
		if lines && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}
