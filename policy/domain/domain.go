// Package domain checks the names of XMPP servers where they enter the
// program — scenario files, flags, partner lists, configuration files —
// and makes the file names derived from them safe, in one place. A
// domain is a JID domainpart (RFC 7622 §3.2, IDNA2008 through
// mellium.im/xmpp/jid) that is also a DNS name: labels separated by
// single dots, none empty, and nothing a path, a shell or a terminal
// reads specially (no '/', '\', control characters, quotes or blanks).
package domain

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// MaxLen is the longest domain accepted, in bytes: a DNS name's limit
// (RFC 1035 §2.3.4), which RFC 7622 §3.2 also caps a domainpart at
// (1023 bytes) from above.
const MaxLen = 253

// Error is a name that is not a domain, and why.
type Error struct {
	Name string
	Why  string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid domain %q: %s", e.Name, e.Why) }

// Check reports whether d is usable as a server's domain.
func Check(d string) error {
	bad := func(why string, a ...any) error { return &Error{Name: d, Why: fmt.Sprintf(why, a...)} }
	switch {
	case d == "":
		return bad("empty")
	case len(d) > MaxLen:
		return bad("longer than %d bytes", MaxLen)
	case !utf8.ValidString(d):
		return bad("not UTF-8")
	}
	for _, r := range d {
		switch {
		case r == '/' || r == '\\':
			return bad("a path separator (%q) is not part of a domain", r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("control character %U", r)
		}
	}
	if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return bad("empty label")
	}
	if _, err := jid.New("", d, ""); err != nil {
		return bad("%v", err)
	}
	return nil
}

// FileName is the base name of a file about domain d, d followed by
// suffix (".crt", ".key"...): d is checked, and the result is one path
// element that cannot leave the directory it is joined to.
func FileName(d, suffix string) (string, error) {
	if err := Check(d); err != nil {
		return "", err
	}
	name := d + suffix
	if strings.ContainsAny(suffix, `/\`) || filepath.Base(name) != name || name == "." || name == ".." || !filepath.IsLocal(name) {
		return "", &Error{Name: d, Why: fmt.Sprintf("%q is not a file name", name)}
	}
	return name, nil
}
