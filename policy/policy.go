// Package policy models the negotiation settings of one XMPP
// server-to-server endpoint in the vocabulary of Lync Server 2013 (TLS,
// SASL and Server Dialback), the documented negotiation matrix of that
// product as data, and the validation of a configuration against it.
//
// Settings hold the behaviour knobs (Behaviour, behaviour.go): the one
// model of how an implementation negotiates where the standards leave a
// choice, followed by the oracle (Predict) and the engine alike, each
// knob's zero value the harness's own. Three other kinds of knob stay
// outside it, each for its reason: faults (package sim) break protocol
// rules that no setting may bend and the oracle does not predict;
// downgrades (package sim) are a man-in-the-middle on the path, no
// endpoint's setting; a real server's keys (package realserver) are its
// own configuration options, whose defaults are that server's, mapped
// onto Settings by each setting's Policy method.
package policy

import (
	"fmt"
	"strings"
)

// Level is the setting of a negotiation feature that can be demanded,
// allowed or refused: the values of -TlsNegotiation and -SaslNegotiation.
type Level int

// The three levels, in the order the source document lists them.
const (
	Required Level = iota
	Optional
	NotSupported
)

// Levels lists every Level in document order.
var Levels = []Level{Required, Optional, NotSupported}

var levelNames = [...]struct{ en, ko string }{
	Required:     {"Required", "필수"},
	Optional:     {"Optional", "선택"},
	NotSupported: {"NotSupported", "지원 안 됨"},
}

func (l Level) valid() bool { return l >= Required && l <= NotSupported }

// String returns the Lync PowerShell spelling of l.
func (l Level) String() string {
	if !l.valid() {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return levelNames[l].en
}

// Korean returns the label the Korean source document uses for l.
func (l Level) Korean() string {
	if !l.valid() {
		return l.String()
	}
	return levelNames[l].ko
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) {
	if !l.valid() {
		return nil, fmt.Errorf("policy: invalid level %d", int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseLevel.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// normalize folds case and drops the separators people put inside
// "Not supported" so that every spelling of one value compares equal.
func normalize(s string) string {
	return separators.Replace(strings.ToLower(strings.TrimSpace(s)))
}

var separators = strings.NewReplacer(" ", "", "_", "", "-", "")

// AcceptedLevels is the help text listing what ParseLevel accepts.
const AcceptedLevels = "Required, Optional, NotSupported (any case; also \"Not supported\", 필수, 선택, 지원 안 됨)"

// ParseLevel reads a level written as a Lync PowerShell value (any case,
// "NotSupported" or "Not supported") or as the Korean document's label.
func ParseLevel(s string) (Level, error) {
	switch normalize(s) {
	case "required", "필수":
		return Required, nil
	case "optional", "선택":
		return Optional, nil
	case "notsupported", "지원안됨":
		return NotSupported, nil
	}
	return 0, fmt.Errorf("invalid level %q: accepted values are %s", s, AcceptedLevels)
}

// AcceptedBools is the help text listing what ParseBool accepts.
const AcceptedBools = "true, false, $true, $false (any case)"

// ParseBool reads a dialback setting as PowerShell or the document writes
// it: true, false, $true or $false in any case.
func ParseBool(s string) (bool, error) {
	switch strings.TrimPrefix(normalize(s), "$") {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q: accepted values are %s", s, AcceptedBools)
}

// Policy is the negotiation settings of one endpoint, as set with
// New-CsXmppAllowedPartner.
type Policy struct {
	TLS      Level `json:"tls"`
	SASL     Level `json:"sasl"`
	Dialback bool  `json:"dialback"`
}

// String formats p as a spec that ParseSpec reads back.
func (p Policy) String() string {
	return fmt.Sprintf("tls=%s,sasl=%s,dialback=%t", p.TLS, p.SASL, p.Dialback)
}

// Partner formats p in the words of the Lync/Skype for Business
// cmdlet that sets it, as the partner's administrator would type it.
func (p Policy) Partner() string {
	return fmt.Sprintf("-TlsNegotiation %s -SaslNegotiation %s -SupportDialbackNegotiation $%t", p.TLS, p.SASL, p.Dialback)
}

// Short is a compact label such as "Req/Opt/T" for tables and grids.
func (p Policy) Short() string {
	abbrev := map[Level]string{Required: "Req", Optional: "Opt", NotSupported: "NS"}
	db := "F"
	if p.Dialback {
		db = "T"
	}
	return abbrev[p.TLS] + "/" + abbrev[p.SASL] + "/" + db
}

// DialbackUsable reports whether the endpoint may authenticate with Server
// Dialback at all: the document states that dialback does not work when
// SASL and TLS are both required.
func (p Policy) DialbackUsable() bool {
	return p.Dialback && !(p.TLS == Required && p.SASL == Required)
}

// All returns the eighteen combinations of settings in the order of the
// document's full matrix (M1 to M18).
func All() []Policy {
	var all []Policy
	for _, sasl := range Levels {
		for _, tls := range Levels {
			for _, db := range []bool{true, false} {
				all = append(all, Policy{TLS: tls, SASL: sasl, Dialback: db})
			}
		}
	}
	return all
}
