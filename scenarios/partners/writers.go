package partners

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
	"xmppneg/policy/printable"
	"xmppneg/policy/report"
)

// Writers are a Lync partner list's report writers, one per format, text
// first as the default: the -o values of partners. The style's language
// is the HTML page's too.
var Writers = report.WithCases(
	report.Writer[*Report, Style]{Format: report.Text, Write: func(w io.Writer, r *Report, st Style) error { WriteText(w, r, st); return nil }},
	report.Writer[*Report, Style]{Format: report.JSON, Write: func(w io.Writer, r *Report, _ Style) error { return WriteJSON(w, r) }},
	report.Writer[*Report, Style]{Format: report.HTML, Write: func(w io.Writer, r *Report, st Style) error { return WriteHTML(w, r, st.Lang) }},
)

// OwnWriters are the writers of the report on an operator's own server
// and its partners (partners --gateway config=…), which has no HTML page.
var OwnWriters = report.WithCases(
	report.Writer[*OwnReport, Style]{Format: report.Text, Write: func(w io.Writer, r *OwnReport, st Style) error { WriteOwnText(w, r, st); return nil }},
	report.Writer[*OwnReport, Style]{Format: report.JSON, Write: func(w io.Writer, r *OwnReport, _ Style) error { return WriteOwnJSON(w, r) }},
)

// MarshalJSON writes a partner as the report's JSON has it: the entry's
// identity and settings, the document's verdict, the negotiations with
// their outcome ids, every blocker and the fix.
func (p *Partner) MarshalJSON() ([]byte, error) {
	type settings struct {
		TLS         policy.Level `json:"tls"`
		SASL        policy.Level `json:"sasl"`
		Dialback    bool         `json:"dialback"`
		PartnerType string       `json:"partner_type"`
	}
	// fields is Partner without this method: its own fields follow the
	// entry's in the JSON, as they are declared.
	type fields Partner
	return json.Marshal(struct {
		Domain            string   `json:"domain"`
		Identity          string   `json:"identity"`
		AdditionalDomains []string `json:"additional_domains"`
		Settings          settings `json:"settings"`
		*fields
	}{p.Entry.Domain, p.Entry.Identity, p.Entry.AdditionalDomains,
		settings{p.Entry.Policy.TLS, p.Entry.Policy.SASL, p.Entry.Policy.Dialback, string(p.Entry.PartnerType)},
		(*fields)(p)})
}

// MarshalJSON writes a negotiation with its outcome as an id ("failed"
// when it failed) and the failure beside it.
func (n *Negotiation) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Direction      Direction         `json:"direction"`
		Outcome        string            `json:"outcome"`
		Failure        *outcome.Failure  `json:"failure"`
		Text           string            `json:"text"`
		Explanation    string            `json:"explanation"`
		Recovered      []outcome.Failure `json:"recovered"`
		TranscriptFile string            `json:"transcript_file,omitempty"`
	}{n.Direction, n.Outcome.ID(), stripTime(n.Outcome.Failure), n.Outcome.String(), n.Explanation, stripTimes(n.Recovered), n.TranscriptFile})
}

// stripTime leaves out how long a failure took: the report is the same
// for one list every time it is run.
func stripTime(f *outcome.Failure) *outcome.Failure {
	if f == nil {
		return nil
	}
	c := *f
	c.Elapsed = 0
	return &c
}

func stripTimes(fs []outcome.Failure) []outcome.Failure {
	out := []outcome.Failure{}
	for _, f := range fs {
		out = append(out, *stripTime(&f))
	}
	return out
}

// MarshalJSON writes a candidate's outcomes as ids.
func (c *CandidateResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name     string `json:"name"`
		Gateway  string `json:"gateway_initiates"`
		Partner  string `json:"partner_initiates"`
		BothWays bool   `json:"both_ways"`
	}{c.Name, c.Outcomes[0].String(), c.Outcomes[1].String(), c.BothWays()})
}

// MarshalJSON writes a fix with its outcome per direction.
func (f *Fix) MarshalJSON() ([]byte, error) {
	type settings struct {
		TLS      policy.Level `json:"tls"`
		SASL     policy.Level `json:"sasl"`
		Dialback bool         `json:"dialback"`
	}
	var out map[string]string
	if len(f.Outcomes) == 2 {
		out = map[string]string{string(GatewayInitiates): f.Outcomes[0].String(), string(PartnerInitiates): f.Outcomes[1].String()}
	}
	return json.Marshal(struct {
		Where    string            `json:"where"`
		Cmdlet   string            `json:"cmdlet"`
		Settings settings          `json:"settings"`
		Changes  []string          `json:"changes"`
		Outcome  map[string]string `json:"outcome,omitempty"`
		Works    string            `json:"works,omitempty"`
		Why      string            `json:"why"`
	}{f.Where, f.Cmdlet, settings{f.Settings.TLS, f.Settings.SASL, f.Settings.Dialback}, f.Changes, out, f.Works, f.Why})
}

// WriteJSON writes the report as one JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// Lang is the language of the labels of the text and HTML reports.
type Lang string

// The languages.
const (
	English Lang = "en"
	Korean  Lang = "ko" // the Korean source document's own terms where it has them
)

// labels are the words of the text and HTML reports. The Korean ones
// are the source document's where it has them (필수, 선택, 지원 안 됨,
// 예상 인증 방법, 경고, 유효하지 않은 구성, XMPP 페더레이션 파트너).
var labels = map[Lang]map[string]string{
	English: {
		"title": "XMPP partners of", "partner": "partner", "row": "row", "settings": "settings", "runs": "runs",
		"verdict": "verdict", "gw": "gateway initiates", "pt": "partner initiates", "fix": "fix",
		"works": "works", "weaker": "weaker", "fails": "FAILS", "unknown": "unknown", "unreachable": "unreachable",
		"notes": "notes", "probed": "probed", "copy": "copy",
		"fix-gateway": "change the partner entry", "fix-certificate": "replace a certificate", "fix-partner": "the partner's server must change",
		"en-note": "",
		"warning": "warning", "invalid": "invalid configuration", "blockers": "blockers", "details": "Details",
		"candidates": "candidates", "with": "works both ways with", "notwith": "not with", "of": "of", "none": "—",
		"verified": "verified by negotiation", "negotiations": "negotiations", "summary": "Summary",
		"transcript": "transcript", "method": "method", "fixes": "fixes",
	},
	Korean: {
		"title": "XMPP 페더레이션 파트너:", "partner": "파트너", "row": "행", "settings": "협상 설정", "runs": "서버",
		"verdict": "판정", "gw": "게이트웨이 → 파트너", "pt": "파트너 → 게이트웨이", "fix": "수정",
		"works": "작동", "weaker": "약한 방법", "fails": "실패", "unknown": "알 수 없음", "unreachable": "연결 불가",
		"notes": "참고", "probed": "탐색함", "copy": "복사",
		"fix-gateway": "파트너 항목 변경", "fix-certificate": "인증서 교체", "fix-partner": "파트너 서버 변경 필요",
		"en-note": "표시된 설명, 장애 요인, 수정 내용은 협상과 진단이 기록한 영어 원문입니다 (번역하지 않음).",
		"warning": "경고", "invalid": "유효하지 않은 구성", "blockers": "장애 요인", "details": "세부 정보",
		"candidates": "후보", "with": "양방향 작동", "notwith": "작동 안 함", "of": "/", "none": "—",
		"verified": "협상으로 확인됨", "negotiations": "협상", "summary": "요약",
		"transcript": "기록", "method": "예상 인증 방법", "fixes": "수정",
	},
}

func (l Lang) label(key string) string {
	if m, ok := labels[l]; ok {
		return m[key]
	}
	return labels[English][key]
}

// level names a level in the report's language.
func (l Lang) level(v policy.Level) string {
	if l == Korean {
		return v.Korean()
	}
	return v.String()
}

// Style is how the text report looks.
type Style struct {
	Color   bool
	Verbose bool // every partner's details and transcripts, not only those that need something
	Lang    Lang
}

func (s Style) paint(color, text string) string {
	if !s.Color || color == "" {
		return text
	}
	codes := map[string]string{"red": "31", "green": "32", "yellow": "33", "bold": "1"}
	return "\x1b[" + codes[color] + "m" + text + "\x1b[0m"
}

// Verdict is the one word that says how a partner fares.
func (p *Partner) Verdict(l Lang) string {
	if p.Status == Unknown {
		return fmt.Sprintf("%s (%d %s %d %s)", l.label("unknown"), p.CandidatesBothWays, l.label("of"), len(p.Candidates), l.label("candidates"))
	}
	return l.label(string(p.Status))
}

var verdictColor = map[Status]string{Works: "green", Weaker: "yellow", Fails: "red", Unknown: "red", Unreachable: "red"}

func (s Style) verdict(p *Partner) string { return s.paint(verdictColor[p.Status], p.Verdict(s.Lang)) }

// cell is one cell of a text table, painted after it is padded.
type cell struct{ text, color string }

// writeTable pads columns to the widest cell as a terminal shows it:
// Hangul takes two columns, which text/tabwriter does not know.
func writeTable(w io.Writer, rows [][]cell, st Style) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], runewidth.StringWidth(c.text))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := ""
			if i < len(r)-1 {
				pad = strings.Repeat(" ", widths[i]-runewidth.StringWidth(c.text)+2)
			}
			b.WriteString(st.paint(c.color, c.text) + pad)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// short is an outcome in a table cell, in the report's language: the
// method's name (the document's, in both), or where it failed.
func (l Lang) short(o outcome.Outcome) string {
	if l == Korean && !o.OK() && o.Failure != nil {
		return "실패: " + o.Failure.Step.String()
	}
	return short(o)
}

// short is an outcome in a table cell.
func short(o outcome.Outcome) string {
	if o.OK() {
		return o.Method.Name()
	}
	if o.Failure == nil {
		return "failed"
	}
	return "failed at " + o.Failure.Step.String()
}

func (s Style) settings(p policy.Policy) string {
	db := "True"
	if !p.Dialback {
		db = "False"
	}
	return fmt.Sprintf("%s/%s/%s", s.Lang.level(p.TLS), s.Lang.level(p.SASL), db)
}

// WriteText writes one line per partner, then the details of those
// that fail, could do better, or run something unknown.
func WriteText(w io.Writer, r *Report, st Style) {
	l := st.Lang
	fmt.Fprintf(w, "%s %s\n", l.label("title"), r.Gateway)
	if l == Korean {
		fmt.Fprintf(w, "(%s)\n", l.label("en-note"))
	}
	fmt.Fprintln(w)
	rows := [][]cell{{{text: l.label("partner")}, {text: l.label("row")}, {text: l.label("settings")}, {text: l.label("runs")},
		{text: l.label("verdict")}, {text: l.label("gw")}, {text: l.label("pt")}, {text: l.label("fix")}}}
	for _, p := range r.Partners {
		gw, pt := "", ""
		if len(p.Negotiations) == 2 {
			gw, pt = short(p.Negotiations[0].Outcome), short(p.Negotiations[1].Outcome)
		}
		fix := l.label("none")
		if p.Fix != nil {
			fix = p.Fix.Cmdlet
			if fix == "" {
				fix = "(" + p.Fix.Where + ")"
			}
		}
		row := p.Row
		if !p.Valid {
			row += "!"
		}
		rows = append(rows, []cell{{text: printable.String(p.Entry.Domain)}, {text: row}, {text: st.settings(p.Entry.Policy)}, {text: p.Runs},
			{text: p.Verdict(l), color: verdictColor[p.Status]}, {text: gw}, {text: pt}, {text: fix}})
	}
	writeTable(w, rows, st)
	first := true
	for _, p := range r.Partners {
		if p.Status == Works && !st.Verbose {
			continue
		}
		if first {
			fmt.Fprintf(w, "\n%s\n", st.paint("bold", l.label("details")))
			first = false
		}
		writeDetails(w, p, st)
	}
	fmt.Fprintf(w, "\n%s in %.1f s\n", summaryLine(r, l), r.Duration.Seconds())
}

// summaryLine counts the verdicts, the fixes and the negotiations.
func summaryLine(r *Report, l Lang) string {
	return fmt.Sprintf("%s: %d %s, %d %s, %d %s, %d %s, %d %s; %d %s; %d %s", l.label("summary"),
		r.Summary.Works, l.label("works"), r.Summary.Weaker, l.label("weaker"), r.Summary.Fails, strings.ToLower(l.label("fails")),
		r.Summary.Unreachable, l.label("unreachable"), r.Summary.Unknown, l.label("unknown"), r.Summary.Fixes, l.label("fixes"),
		r.Summary.Negotiations, l.label("negotiations"))
}

func writeDetails(w io.Writer, p *Partner, st Style) {
	l := st.Lang
	row := p.Row
	if !p.Valid {
		row += ", " + l.label("invalid")
	}
	// What the partner list says is printed as text, never as terminal
	// control sequences (package printable).
	fmt.Fprintf(w, "\n%s — %s (%s), %s %s: %s\n", st.paint("bold", printable.String(p.Entry.Domain)), row, p.Entry.Policy.Partner(), l.label("runs"), p.Runs, st.verdict(p))
	for _, f := range p.Warnings {
		msg := f.Message
		if l == Korean && f.Korean != "" {
			msg = f.Korean
		}
		fmt.Fprintf(w, "  %s [%s]: %s\n", l.label("warning"), f.Code, printable.String(msg))
	}
	for _, n := range p.Negotiations {
		fmt.Fprintf(w, "  %s: %s\n", l.label(map[Direction]string{GatewayInitiates: "gw", PartnerInitiates: "pt"}[n.Direction]), n.Explanation)
		if n.TranscriptFile != "" {
			fmt.Fprintf(w, "    %s: %s\n", l.label("transcript"), n.TranscriptFile)
		} else if st.Verbose && n.Transcript != "" {
			fmt.Fprintf(w, "%s\n", indent(n.Transcript, "    "))
		}
	}
	if len(p.Candidates) > 0 {
		var ok, not []string
		for _, c := range p.Candidates {
			if c.BothWays() {
				ok = append(ok, c.Name)
			} else {
				not = append(not, fmt.Sprintf("%s (%s / %s)", c.Name, short(c.Outcomes[0]), short(c.Outcomes[1])))
			}
		}
		fmt.Fprintf(w, "  %s: %s\n", l.label("with"), strings.Join(ok, ", "))
		if len(not) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", l.label("notwith"), strings.Join(not, ", "))
		}
	}
	if len(p.Blockers) > 0 {
		fmt.Fprintf(w, "  %s:\n", l.label("blockers"))
		for _, b := range p.Blockers {
			fmt.Fprintf(w, "    [%s] %s\n", b.Code, printable.String(b.Message))
		}
	}
	if len(p.Notes) > 0 {
		fmt.Fprintf(w, "  %s:\n", l.label("notes"))
		for _, b := range p.Notes {
			fmt.Fprintf(w, "    [%s] %s\n", b.Code, printable.String(b.Message))
		}
	}
	if p.Fix != nil {
		what := p.Fix.Cmdlet
		if what == "" {
			what = l.label("fix-" + p.Fix.Where)
		}
		fmt.Fprintf(w, "  %s (%s): %s\n", l.label("fix"), p.Fix.Where, what)
		fmt.Fprintf(w, "    %s (%s)\n", p.Fix.Why, l.label("verified"))
		for _, n := range p.Fix.Negotiations {
			if n.TranscriptFile != "" {
				fmt.Fprintf(w, "    %s: %s\n", l.label("transcript"), n.TranscriptFile)
			}
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// WriteJUnit writes the report as JUnit XML (its Cases).
func WriteJUnit(w io.Writer, r *Report) error { return report.WriteJUnit(w, r.Cases()) }

// Cases is one case per partner: a failure when its verdict fails the
// list (FAILS, unreachable, unknown), so that the failures JUnit counts
// are the partners the summary counts as failing and the exit code says
// the same. Each case's output is what each direction came to, with the
// transcripts' paths.
func (r *Report) Cases() report.Cases {
	s := report.Suite{Name: "partners"}
	for _, p := range r.Partners {
		c := report.Case{Class: "partners", Name: p.Entry.Domain}
		var out []string
		for _, n := range p.Negotiations {
			line := fmt.Sprintf("%s: %s", n.Direction, n.Explanation)
			if n.TranscriptFile != "" {
				line += "\ntranscript: " + n.TranscriptFile
			}
			out = append(out, line)
		}
		c.Output = strings.Join(out, "\n")
		if p.Status.Failing() {
			var msg []string
			switch {
			case len(p.Negotiations) == 2:
				msg = append(msg, fmt.Sprintf("%s: gateway initiates %s; partner initiates %s", p.Verdict(English), p.Negotiations[0].Outcome, p.Negotiations[1].Outcome))
			default:
				msg = append(msg, p.Verdict(English))
			}
			var text []string
			for _, b := range p.Blockers {
				text = append(text, "["+b.Code+"] "+b.Message)
			}
			switch {
			case p.Fix != nil:
				text = append(text, strings.TrimSpace("fix: "+p.Fix.Cmdlet+" "+p.Fix.Why))
			case p.Status == Fails:
				text = append(text, "no fix found")
			}
			c.Status, c.Message, c.Type, c.Text = report.Failed, strings.Join(msg, " "), string(p.Status), strings.Join(text, "\n")
		}
		s.Cases = append(s.Cases, c)
	}
	return report.Cases{Suites: []report.Suite{s}, Elapsed: r.Duration, Single: true}
}
