package policy

import (
	"encoding/json"
	"fmt"

	"xmppneg/policy/outcome"
)

// Text is a message of the source document in English (a paraphrase) and
// in the Korean original, which is authoritative.
type Text struct {
	En string `json:"en"`
	Ko string `json:"ko"`
}

// Finding is a warning or an error the document attaches to a row.
// Code is stable: scripts and tests may match on it.
type Finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Korean  string `json:"korean"`
}

func finding(code string, t Text) Finding {
	return Finding{Code: code, Message: t.En, Korean: t.Ko}
}

// Stable codes of the document's warnings and errors.
const (
	CodeDialbackDisabled     = "dialback-disabled"         // M1
	CodeSASLNeedsTLS         = "sasl-needs-tls"            // M3–M5, M9–M12
	CodeInvalidConfiguration = "invalid-configuration"     // every invalid row
	CodeSASLTLSUnavailable   = "sasl-tls-unavailable"      // M6
	CodeSASLOrDialback       = "sasl-or-dialback-required" // M14, M16, M18
)

var (
	textDialbackDisabled = Text{
		En: "Dialback does not work when SASL and TLS are both required.",
		Ko: "SASL 및 TLS가 필수인 경우 Dialback이 작동되지 않습니다.",
	}
	textSASLNeedsTLS = Text{
		En: "SASL needs TLS; leaving TLS optional can make session negotiation fail.",
		Ko: "SASL에 TLS가 필요합니다. TLS를 선택 항목으로 설정하면 세션 협상에 실패할 수 있습니다.",
	}
	textInvalid = Text{
		En: "Invalid configuration.",
		Ko: "유효하지 않은 구성",
	}
	textSASLTLSUnavailable = Text{
		En: "SASL needs TLS, TLS is unavailable, so SASL/TLS cannot succeed; TCP Dialback is set to False and cannot be used.",
		Ko: "SASL에 TLS가 필요하지만 TLS를 사용할 수 없으므로 SASL/TLS가 성공할 수 없습니다. TCP Dialback이 False로 설정되고 사용할 수 없습니다.",
	}
	textSASLOrDialback = Text{
		En: "SASL or Dialback must be enabled.",
		Ko: "SASL 또는 Dialback을 사용하도록 설정해야 합니다.",
	}
)

// Row is one row of a table of the source document.
type Row struct {
	ID       string            `json:"row"`
	Policy   Policy            `json:"policy"`
	Valid    bool              `json:"valid"`
	Methods  outcome.MethodSet `json:"methods"`
	Note     Text              `json:"note"`
	Warnings []Finding         `json:"warnings"`
	Errors   []Finding         `json:"errors"`
}

// MarshalJSON writes r with [] rather than null for empty lists.
func (r Row) MarshalJSON() ([]byte, error) {
	type plain Row
	r.Warnings, r.Errors, r.Methods = nonNil(r.Warnings), nonNil(r.Errors), outcome.NewMethodSet(r.Methods...)
	return json.Marshal(plain(r))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Table is one of the document's two tables.
type Table struct {
	ID    string `json:"id"`
	Title Text   `json:"title"`
	Rows  []Row  `json:"rows"`
}

var (
	req, opt, ns = Required, Optional, NotSupported
	sot, tlsdb   = outcome.SASLOverTLS, outcome.TLSDialback
	tcpdb        = outcome.TCPDialback
)

func pol(tls, sasl Level, db bool) Policy { return Policy{TLS: tls, SASL: sasl, Dialback: db} }

// Common is the document's first table, "Common XMPP federation
// negotiation methods" (일반 XMPP 페더레이션 협상 방법), rows C1 to C4.
var Common = Table{
	ID:    "common",
	Title: Text{En: "Common XMPP federation negotiation methods", Ko: "일반 XMPP 페더레이션 협상 방법"},
	Rows: []Row{
		{ID: "C1", Policy: pol(req, req, false), Valid: true, Methods: outcome.MethodSet{sot}, Note: Text{
			En: "TLS and SASL both required keep the SASL exchange protected. Dialback is not available and cannot serve as a fallback if the partner has not set TLS to Required or Optional.",
			Ko: "필수 TLS와 SASL은 SASL 메시지 스트림에 대한 보안을 유지하는 데 도움이 됩니다. XMPP 페더레이션 파트너가 TLS를 필수 또는 선택 사항으로 설정하지 않은 경우 Dialback을 대체 방법으로 사용할 수 없습니다.",
		}},
		{ID: "C2", Policy: pol(req, opt, true), Valid: true, Methods: outcome.MethodSet{sot, tlsdb, tcpdb}, Note: Text{
			En: "With TLS required: if the partner sets SASL Optional or Required, SASL is used; if SASL is unavailable, Dialback over TLS is used.",
			Ko: "XMPP 페더레이션 파트너가 TLS를 요구하여 SASL을 선택 또는 필수로 설정한 경우 SASL이 사용됩니다. SASL을 사용할 수 없으면 Dialback over TLS가 사용됩니다.",
		}},
		{ID: "C3", Policy: pol(opt, opt, true), Valid: true, Methods: outcome.MethodSet{sot, tlsdb, tcpdb}, Note: Text{
			En: "Very flexible, but depends on the partner's settings. Partner with TLS Optional/Required but no SASL: TLS Dialback. Partner with TLS and SASL Optional/Required: SASL over TLS, the best choice.",
			Ko: "매우 유연한 협상 방법이 제공되는 반면, 이러한 설정은 XMPP 페더레이션 파트너의 설정에 의존합니다. 파트너가 TLS를 선택 또는 필수로 설정했지만 SASL을 지원하지 않을 경우 TLS Dialback을 사용할 수 있습니다. 파트너가 TLS 및 SASL을 선택 또는 필수로 설정한 경우 TLS over SASL이 최적 설정으로 사용됩니다.",
		}},
		{ID: "C4", Policy: pol(ns, ns, true), Valid: true, Methods: outcome.MethodSet{tcpdb}, Note: Text{
			En: "Often TCP Dialback is the only possible solution; less desirable than the others but gives some degree of trust.",
			Ko: "대부분의 경우 TCP Dialback만이 사용 가능한 유일한 솔루션입니다. 다른 옵션보다는 덜 바람직하지만, 어느 정도의 신뢰성을 제공합니다.",
		}},
	},
}

var (
	wDialbackDisabled = []Finding{finding(CodeDialbackDisabled, textDialbackDisabled)}
	wSASLNeedsTLS     = []Finding{finding(CodeSASLNeedsTLS, textSASLNeedsTLS)}
	eInvalid          = finding(CodeInvalidConfiguration, textInvalid)
	eSASLOrDialback   = []Finding{eInvalid, finding(CodeSASLOrDialback, textSASLOrDialback)}
)

// Full is the document's second table, "Full matrix of XMPP federation
// negotiation methods" (XMPP 페더레이션 협상 방법 매트릭스 - 전체), rows M1 to M18,
// one for every combination of settings.
var Full = Table{
	ID:    "full",
	Title: Text{En: "Full matrix of XMPP federation negotiation methods", Ko: "XMPP 페더레이션 협상 방법 매트릭스 - 전체"},
	Rows: []Row{
		{ID: "M1", Policy: pol(req, req, true), Valid: true, Methods: outcome.MethodSet{sot}, Warnings: wDialbackDisabled},
		{ID: "M2", Policy: pol(req, req, false), Valid: true, Methods: outcome.MethodSet{sot}},
		{ID: "M3", Policy: pol(opt, req, true), Valid: true, Methods: outcome.MethodSet{sot, tlsdb, tcpdb}, Warnings: wSASLNeedsTLS},
		{ID: "M4", Policy: pol(opt, req, false), Valid: true, Methods: outcome.MethodSet{sot}, Warnings: wSASLNeedsTLS},
		{ID: "M5", Policy: pol(ns, req, true), Valid: true, Methods: outcome.MethodSet{tcpdb}, Warnings: wSASLNeedsTLS},
		{ID: "M6", Policy: pol(ns, req, false), Methods: outcome.MethodSet{}, Errors: []Finding{eInvalid, finding(CodeSASLTLSUnavailable, textSASLTLSUnavailable)}},
		{ID: "M7", Policy: pol(req, opt, true), Valid: true, Methods: outcome.MethodSet{sot, tlsdb}},
		{ID: "M8", Policy: pol(req, opt, false), Valid: true, Methods: outcome.MethodSet{sot}},
		{ID: "M9", Policy: pol(opt, opt, true), Valid: true, Methods: outcome.MethodSet{sot, tlsdb, tcpdb}, Warnings: wSASLNeedsTLS},
		{ID: "M10", Policy: pol(opt, opt, false), Valid: true, Methods: outcome.MethodSet{sot}, Warnings: wSASLNeedsTLS},
		{ID: "M11", Policy: pol(ns, opt, true), Valid: true, Methods: outcome.MethodSet{tcpdb}, Warnings: wSASLNeedsTLS},
		{ID: "M12", Policy: pol(ns, opt, false), Methods: outcome.MethodSet{}, Warnings: wSASLNeedsTLS, Errors: []Finding{eInvalid}},
		{ID: "M13", Policy: pol(req, ns, true), Valid: true, Methods: outcome.MethodSet{tlsdb}, Note: Text{
			En: "The configuration allows TLS Dialback.", Ko: "구성에서 TLS Dialback을 허용합니다."}},
		{ID: "M14", Policy: pol(req, ns, false), Methods: outcome.MethodSet{}, Errors: eSASLOrDialback},
		{ID: "M15", Policy: pol(opt, ns, true), Valid: true, Methods: outcome.MethodSet{tlsdb, tcpdb}, Note: Text{
			En: "TCP or TLS Dialback is allowed, depending on the other endpoint's negotiation choice.", Ko: "다른 끝점의 협상 선택에 따라 TCP 또는 TLS Dialback이 허용됩니다."}},
		{ID: "M16", Policy: pol(opt, ns, false), Methods: outcome.MethodSet{}, Errors: eSASLOrDialback},
		{ID: "M17", Policy: pol(ns, ns, true), Valid: true, Methods: outcome.MethodSet{tcpdb}, Note: Text{
			En: "TCP Dialback is the only negotiation available.", Ko: "TCP Dialback이 사용 가능한 유일한 협상입니다."}},
		{ID: "M18", Policy: pol(ns, ns, false), Methods: outcome.MethodSet{}, Errors: eSASLOrDialback},
	},
}

// Lookup returns the row of t whose settings are p.
func (t Table) Lookup(p Policy) (Row, bool) {
	for _, r := range t.Rows {
		if r.Policy == p {
			return r, true
		}
	}
	return Row{}, false
}

// Row returns the row of t with the given id (such as "M7").
func (t Table) Row(id string) (Row, bool) {
	for _, r := range t.Rows {
		if normalize(r.ID) == normalize(id) {
			return r, true
		}
	}
	return Row{}, false
}

// Inconsistency is a place where the document contradicts itself or the
// protocol it describes: a finding of this tool, not an error of the input.
type Inconsistency struct {
	Code    string            `json:"code"`
	Rows    []string          `json:"rows"`
	Policy  Policy            `json:"policy"`
	Message string            `json:"message"`
	Extra   outcome.MethodSet `json:"extra,omitempty"`   // listed by the first row only
	Missing outcome.MethodSet `json:"missing,omitempty"` // listed by the second row only
}

// Inconsistencies checks the two tables against each other and against
// the rule that a stream whose TLS is Required never runs unencrypted. On
// the document as published it finds that C2 contradicts M7.
func Inconsistencies() []Inconsistency {
	return inconsistencies(Common, Full)
}

func inconsistencies(common, full Table) []Inconsistency {
	var out []Inconsistency
	for _, c := range common.Rows {
		m, ok := full.Lookup(c.Policy)
		if !ok {
			out = append(out, Inconsistency{Code: "missing-row", Rows: []string{c.ID}, Policy: c.Policy,
				Message: fmt.Sprintf("%s (%s) has no row with the same settings in the full matrix", c.ID, c.Policy)})
			continue
		}
		if c.Methods.Equal(m.Methods) && c.Valid == m.Valid {
			continue
		}
		inc := Inconsistency{Code: "tables-disagree", Rows: []string{c.ID, m.ID}, Policy: c.Policy,
			Extra: c.Methods.Minus(m.Methods), Missing: m.Methods.Minus(c.Methods)}
		inc.Message = fmt.Sprintf("%s and %s describe the same settings (%s) but list different methods: %s lists %s, %s lists %s",
			c.ID, m.ID, c.Policy, c.ID, c.Methods.Names(), m.ID, m.Methods.Names())
		if c.Policy.TLS == Required && inc.Extra.Has(outcome.TCPDialback) {
			inc.Message += fmt.Sprintf("; %s cannot be right: with TLS Required no stream runs unencrypted, so TCP Dialback is impossible", c.ID)
		}
		out = append(out, inc)
	}
	named := map[string]bool{}
	for _, inc := range out {
		for _, id := range inc.Rows {
			named[id] = true
		}
	}
	for _, t := range []Table{common, full} {
		for _, r := range t.Rows {
			if r.Policy.TLS == Required && r.Methods.Has(outcome.TCPDialback) && !named[r.ID] {
				out = append(out, Inconsistency{Code: "tcp-dialback-with-tls-required", Rows: []string{r.ID}, Policy: r.Policy,
					Message: fmt.Sprintf("%s lists TCP Dialback although TLS is Required", r.ID)})
			}
		}
	}
	return out
}

// Verdict is what the document says of one configuration.
type Verdict struct {
	Row      string            `json:"row"`
	TLS      Level             `json:"tls"`
	SASL     Level             `json:"sasl"`
	Dialback bool              `json:"dialback"`
	Valid    bool              `json:"valid"`
	Methods  outcome.MethodSet `json:"methods"`
	Warnings []Finding         `json:"warnings"`
	Errors   []Finding         `json:"errors"`
	Note     *Text             `json:"note,omitempty"`
}

// Validate returns the full matrix's verdict on p: its row, whether it is
// valid, the methods to expect and the row's warnings and errors.
func Validate(p Policy) (Verdict, error) {
	r, ok := Full.Lookup(p)
	if !ok {
		return Verdict{}, fmt.Errorf("policy: %s is not a combination of the full matrix", p)
	}
	v := Verdict{Row: r.ID, TLS: p.TLS, SASL: p.SASL, Dialback: p.Dialback, Valid: r.Valid,
		Methods: outcome.NewMethodSet(r.Methods...), Warnings: append([]Finding{}, r.Warnings...), Errors: append([]Finding{}, r.Errors...)}
	if r.Note != (Text{}) {
		n := r.Note
		v.Note = &n
	}
	return v, nil
}
