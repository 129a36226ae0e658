package policy

import (
	"fmt"
	"strings"

	"xmppneg/certs"
)

// Settings is everything that decides how one endpoint negotiates: its
// Policy, its certificate and secret, and its Behaviour where real
// implementations differ.
type Settings struct {
	Policy
	Cert   certs.State `json:"cert"`   // the certificate it presents
	Secret string      `json:"secret"` // dialback secret; empty means one drawn at random per process
	Behaviour
	// Profile names the profile the settings started from, if any.
	Profile string `json:"profile,omitempty"`
}

// DefaultSettings is what a spec starts from: the document's flexible
// common setting C3 (TLS Optional, SASL Optional, dialback on), a valid
// certificate, and the harness's own behaviour, the zero Behaviour,
// which is strict: an invalid certificate aborts the TLS handshake in
// both directions.
func DefaultSettings() Settings {
	return Settings{Policy: Policy{TLS: Optional, SASL: Optional, Dialback: true}, Cert: certs.Valid}
}

// Strict reports whether the endpoint aborts the TLS handshake on an
// invalid certificate in both directions (strict=true).
func (s Settings) Strict() bool {
	return s.Refuse == RefuseAtHandshake && s.RefuseServer == ServerRefusalHandshake
}

// SetStrict sets both refusal knobs: strict=true is refuse=handshake and
// refuse_server=handshake; strict=false is refuse=sasl and
// refuse_server=none.
func (s *Settings) SetStrict(strict bool) {
	if strict {
		s.Refuse, s.RefuseServer = RefuseAtHandshake, ServerRefusalHandshake
	} else {
		s.Refuse, s.RefuseServer = RefuseAtSASL, ServerRefusalNone
	}
}

// RefusalPoints names when an endpoint refuses an invalid certificate,
// in both directions: "handshake" (strict=true: refuse=handshake,
// refuse_server=handshake), "after-tls" (refuse=after-tls,
// refuse_server=after-tls, as Prosody's s2s_secure_auth) and "sasl"
// (strict=false: refuse=sasl, refuse_server=none).
var RefusalPoints = []string{"handshake", "after-tls", "sasl"}

// SetRefusalPoint sets both refusal knobs to the named point.
func (s *Settings) SetRefusalPoint(name string) error {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "handshake", "strict":
		s.SetStrict(true)
	case "after-tls":
		s.Refuse, s.RefuseServer = RefuseAfterTLS, ServerRefusalAfterTLS
	case "sasl", "lenient":
		s.SetStrict(false)
	default:
		return fmt.Errorf("invalid refusal point %q: accepted values are %s", name, strings.Join(RefusalPoints, ", "))
	}
	return nil
}

// SpecKeys lists the keys ParseSpec accepts, besides the behaviour
// knobs (BehaviourKeys).
const SpecKeys = "profile, config, tls, sasl, dialback, cert, strict, secret"

// SpecKeysHelp lists the main keys ParseSpec accepts with their values.
var SpecKeysHelp = "profile (see 'xmppneg profiles'), config (FILE or FILE#HOST: a Prosody, ejabberd or jabberd2 configuration file, see 'xmppneg explain'), tls, sasl (Required|Optional|NotSupported), dialback (true|false), cert (" +
	strings.ReplaceAll(certs.AcceptedStates, ", ", "|") + "), strict (true|false: refuse=handshake,refuse_server=handshake or refuse=sasl,refuse_server=none), secret, and the behaviour knobs of 'xmppneg profiles'"

// ParseSpec reads settings written as comma-separated key=value pairs,
// such as "tls=Required,sasl=Optional,dialback=true,cert=expired" or
// "profile=prosody-0.12,cert=expired". A profile is applied first,
// wherever it stands; the other keys override it. Keys not given keep
// the values of DefaultSettings (or of the profile). An error names the
// bad key or value and lists what is accepted.
func ParseSpec(spec string) (Settings, error) {
	return ParseSpecFrom(DefaultSettings(), spec)
}

// ParseSpecFrom is ParseSpec starting from base instead of
// DefaultSettings: a profile in spec replaces base, the other keys
// override it. Commands whose defaults differ (probe goes on past an
// invalid certificate to see what the server does) start from theirs.
func ParseSpecFrom(base Settings, spec string) (Settings, error) {
	s := base
	if strings.TrimSpace(spec) == "" {
		return s, nil
	}
	type kv struct{ key, val string }
	var pairs []kv
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
		if key == "config" {
			if seen["profile"] {
				return s, fmt.Errorf("profile and config both say where to start from: give one")
			}
			c, err := ReadConfig(val)
			if err != nil {
				return s, fmt.Errorf("config: %w", err)
			}
			s = c
			continue
		}
		if key == "profile" {
			if seen["config"] {
				return s, fmt.Errorf("profile and config both say where to start from: give one")
			}
			p, err := LookupProfile(val)
			if err != nil {
				return s, fmt.Errorf("profile: %w", err)
			}
			s = p.Settings
			s.Profile = p.Name
			continue
		}
		pairs = append(pairs, kv{key, val})
	}
	for _, p := range pairs {
		if err := s.Set(p.key, p.val); err != nil {
			return s, err
		}
	}
	if lo, hi := s.TLSRange(); lo > hi {
		return s, fmt.Errorf("tls_max %d.%d is below tls_min %d.%d: give both, such as tls_min=1.0,tls_max=%d.%d", hi/10, hi%10, lo/10, lo%10, hi/10, hi%10)
	}
	return s, nil
}

// ConfigReader reads what one host of a server's configuration file
// amounts to: ref is "FILE" or "FILE#HOST".
type ConfigReader func(ref string) (Settings, error)

var configReader ConfigReader

// RegisterConfigReader makes ParseSpec accept config=FILE[#HOST]. The
// readers live in package serverconf, which registers itself: policy
// cannot import it (it builds on policy).
func RegisterConfigReader(r ConfigReader) { configReader = r }

// ReadConfig returns the settings of the configuration ref names,
// "FILE" or "FILE#HOST", through the registered reader.
func ReadConfig(ref string) (Settings, error) {
	if configReader == nil {
		return Settings{}, fmt.Errorf("no reader of configuration files in this program (import xmppneg/policy/serverconf)")
	}
	return configReader(ref)
}

// Set sets the setting named key from its textual value.
func (s *Settings) Set(key, val string) error {
	var err error
	switch key = strings.ToLower(key); key {
	case "tls":
		s.TLS, err = ParseLevel(val)
	case "sasl":
		s.SASL, err = ParseLevel(val)
	case "dialback":
		s.Dialback, err = ParseBool(val)
	case "cert":
		s.Cert, err = certs.ParseState(val)
	case "strict":
		var strict bool
		strict, err = ParseBool(val)
		s.SetStrict(strict)
	case "secret":
		s.Secret = val
	default:
		ok, kerr := s.Behaviour.setKnob(key, val)
		if !ok {
			hint := ""
			if near := Closest(key, append(strings.Split(SpecKeys, ", "), KnobKeys()...)); near != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", near)
			}
			return fmt.Errorf("unknown key %q%s: accepted keys are %s, and the behaviour knobs %s", key, hint, SpecKeys, knobNames())
		}
		err = kerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func knobNames() string { return strings.Join(KnobKeys(), ", ") }

// String formats s as a spec ParseSpec reads back (the secret is left
// out): the policy, the certificate, strict=true|false when the
// refusal knobs are one of its two pairs, and every knob that differs
// from what a spec starts from (DefaultSettings, the zero Behaviour):
// refuse=sasl is written out when it comes without refuse_server=none
// (ejabberd without dialback).
func (s Settings) String() string {
	out := fmt.Sprintf("%s,cert=%s", s.Policy, s.Cert)
	b := s.Behaviour
	switch {
	case s.Strict():
		out += ",strict=true"
	case b.Refuse == RefuseAtSASL && b.RefuseServer == ServerRefusalNone:
		out += ",strict=false"
		// strict=false said both refusal knobs.
		b.Refuse, b.RefuseServer = RefuseAtHandshake, ServerRefusalHandshake
	}
	if d := b.String(); d != "" {
		out += "," + d
	}
	return out
}
