package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Method is an authentication method that a negotiation can end with.
type Method string

// The three methods the document names.
const (
	SASLOverTLS Method = "sasl-over-tls" // STARTTLS, then SASL EXTERNAL (XEP-0178)
	TLSDialback Method = "tls-dialback"  // STARTTLS, then Server Dialback (XEP-0220)
	TCPDialback Method = "tcp-dialback"  // Server Dialback on an unencrypted stream
)

// Methods lists every Method in the order the document lists them.
var Methods = []Method{SASLOverTLS, TLSDialback, TCPDialback}

// Name returns the document's name for m, such as "SASL over TLS".
func (m Method) Name() string {
	switch m {
	case SASLOverTLS:
		return "SASL over TLS"
	case TLSDialback:
		return "TLS Dialback"
	case TCPDialback:
		return "TCP Dialback"
	}
	return string(m)
}

// ParseMethod reads a method id or the document's name for it.
func ParseMethod(s string) (Method, error) {
	n := normalize(s)
	for _, m := range Methods {
		if n == normalize(string(m)) || n == normalize(m.Name()) {
			return m, nil
		}
	}
	return "", fmt.Errorf("invalid method %q: accepted values are %s, %s, %s", s, SASLOverTLS, TLSDialback, TCPDialback)
}

func (m Method) rank() int {
	for i, x := range Methods {
		if x == m {
			return i
		}
	}
	return len(Methods)
}

// MethodSet is a set of methods kept in document order.
type MethodSet []Method

// NewMethodSet returns the methods of ms without duplicates, in document order.
func NewMethodSet(ms ...Method) MethodSet {
	seen := map[Method]bool{}
	out := MethodSet{}
	for _, m := range ms {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rank() < out[j].rank() })
	return out
}

// Has reports whether m is in s.
func (s MethodSet) Has(m Method) bool {
	for _, x := range s {
		if x == m {
			return true
		}
	}
	return false
}

// Equal reports whether s and t hold the same methods.
func (s MethodSet) Equal(t MethodSet) bool {
	a, b := NewMethodSet(s...), NewMethodSet(t...)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Minus returns the methods of s that are not in t.
func (s MethodSet) Minus(t MethodSet) MethodSet {
	var out []Method
	for _, m := range s {
		if !t.Has(m) {
			out = append(out, m)
		}
	}
	return NewMethodSet(out...)
}

// String lists the ids, comma separated, or "none".
func (s MethodSet) String() string {
	if len(s) == 0 {
		return "none"
	}
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = string(m)
	}
	return strings.Join(parts, ", ")
}

// Names lists the document's names, comma separated, or "none".
func (s MethodSet) Names() string {
	if len(s) == 0 {
		return "none"
	}
	parts := make([]string, len(s))
	for i, m := range s {
		parts[i] = m.Name()
	}
	return strings.Join(parts, ", ")
}
