package policy

import (
	"fmt"
	"strings"

	"xmppneg/certs"
)

// Settings is everything that decides how one endpoint negotiates: its
// Policy plus what real deployments add to it.
type Settings struct {
	Policy
	Cert   certs.State `json:"cert"`   // the certificate it presents
	Strict bool        `json:"strict"` // abort TLS when the peer's certificate is invalid
	Secret string      `json:"secret"` // dialback secret; empty means derived from the domain
}

// DefaultSettings is what a spec starts from: the document's flexible
// common setting C3 (TLS Optional, SASL Optional, dialback on), a valid
// certificate and strict certificate checking.
func DefaultSettings() Settings {
	return Settings{Policy: Policy{TLS: Optional, SASL: Optional, Dialback: true}, Cert: certs.Valid, Strict: true}
}

// SpecKeys lists the keys ParseSpec accepts.
const SpecKeys = "tls, sasl, dialback, cert, strict, secret"

// SpecKeysHelp lists the keys ParseSpec accepts with their values.
var SpecKeysHelp = "tls, sasl (Required|Optional|NotSupported), dialback (true|false), cert (" +
	strings.ReplaceAll(certs.AcceptedStates, ", ", "|") + "), strict (true|false), secret"

// ParseSpec reads settings written as comma-separated key=value pairs,
// such as "tls=Required,sasl=Optional,dialback=true,cert=expired". Keys
// not given keep the values of DefaultSettings. An error names the bad key
// or value and lists what is accepted.
func ParseSpec(spec string) (Settings, error) {
	s := DefaultSettings()
	if strings.TrimSpace(spec) == "" {
		return s, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		key, val, ok := strings.Cut(part, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if !ok {
			return s, fmt.Errorf("%q is not key=value (keys: %s)", strings.TrimSpace(part), SpecKeys)
		}
		if seen[key] {
			return s, fmt.Errorf("key %q given twice", key)
		}
		seen[key] = true
		if err := s.Set(key, val); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Set sets the setting named key from its textual value.
func (s *Settings) Set(key, val string) error {
	var err error
	switch strings.ToLower(key) {
	case "tls":
		s.TLS, err = ParseLevel(val)
	case "sasl":
		s.SASL, err = ParseLevel(val)
	case "dialback":
		s.Dialback, err = ParseBool(val)
	case "cert":
		s.Cert, err = certs.ParseState(val)
	case "strict":
		s.Strict, err = ParseBool(val)
	case "secret":
		s.Secret = val
	default:
		return fmt.Errorf("unknown key %q: accepted keys are %s", key, SpecKeys)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// String formats s as a spec ParseSpec reads back (the secret is left out).
func (s Settings) String() string {
	return fmt.Sprintf("%s,cert=%s,strict=%t", s.Policy, s.Cert, s.Strict)
}
