package partners

import (
	"html/template"
	"io"
	"strings"

	"xmppneg/scenarios"
)

// The HTML report is one page a person reads at a glance: a row per
// partner coloured by its verdict, each direction's outcome linking to
// its transcript, the fix as a line that copies in one click (never
// broken at its hyphens), and under each row what the text report says
// in its details: the documented warnings, every blocker, the notes and
// why the fix is right. It fits a 1400 px window. In Korean the labels
// and the document's warnings are the document's words; what the
// negotiations wrote is English and marked so.

var htmlPage = template.Must(template.New("partners").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.L.title}} {{.R.Gateway}}</title>
<style>
body{font:14px/1.45 system-ui,"Segoe UI","Malgun Gothic","Apple SD Gothic Neo","Noto Sans KR","NanumGothic",sans-serif;margin:24px;color:#1f2328;max-width:1352px}
:lang(ko){word-break:keep-all;overflow-wrap:anywhere}
h1{font-size:20px;margin:0 0 4px}
.summary{margin:0 0 12px;color:#444}
.legend{font-size:12px;color:#555;margin:0 0 12px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{border:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
col.who{width:19%}col.verdict{width:11%}col.dir{width:13%}col.fix{width:44%}
tbody.works td{background:#e6f4e6}tbody.weaker td{background:#fff6d6}
tbody.fails td,tbody.unreachable td{background:#fbe3e3}tbody.unknown td{background:#ececf7}
tbody{border-top:2px solid #8c959f}
.domain{font-weight:600;overflow-wrap:anywhere}
.sub{font-size:12px;color:#555}
.verdict{font-weight:700;white-space:nowrap}
td.dir a,td.dir span{white-space:nowrap}
tbody.fails .verdict,tbody.unreachable .verdict,tbody.unknown .verdict{color:#a40e26}
tbody.works .verdict{color:#116329}
.cand{font-weight:400;font-size:12px;white-space:normal}
.cmd{display:flex;gap:6px;align-items:flex-start;margin-bottom:4px}
.cmd code{flex:1;font:12.5px/1.5 ui-monospace,"Cascadia Mono",Consolas,"DejaVu Sans Mono",monospace;background:#fff;border:1px solid #d0d7de;border-radius:4px;padding:3px 6px;user-select:all;cursor:text}
.cmd code span{white-space:nowrap}
button.copy{font-size:12px;padding:2px 8px;cursor:pointer;white-space:nowrap}
.where{font-size:12px;color:#555}
tr.more td{font-size:13px;border-top:none}
tr.more ul{margin:2px 0 6px;padding-left:18px}
tr.more h3{font-size:12px;margin:4px 0 0;text-transform:uppercase;letter-spacing:.03em;color:#555}
:lang(ko) tr.more h3{text-transform:none;letter-spacing:0}
.code{font:11px ui-monospace,monospace;color:#555}
.warn{color:#7a4b00}
.en::before{content:"EN";font:600 10px system-ui,sans-serif;color:#fff;background:#6e7781;border-radius:3px;padding:0 3px;margin-right:4px;vertical-align:1px}
:lang(en) .en::before{content:none}
a{color:#0550ae}
</style></head><body>
<h1>{{.L.title}} {{.R.Gateway}}</h1>
<p class="summary">{{.Summary}}</p>
{{if .EnNote}}<p class="legend"><span class="en" lang="en"></span>{{.EnNote}}</p>{{end}}
<table>
<colgroup><col class="who"><col class="verdict"><col class="dir"><col class="dir"><col class="fix"></colgroup>
<thead><tr><th>{{.L.partner}}</th><th>{{.L.verdict}}</th><th>{{.L.gw}}</th><th>{{.L.pt}}</th><th>{{.L.fix}}</th></tr></thead>
{{range .Rows}}<tbody class="{{.Status}}">
<tr><td><div class="domain">{{.Domain}}</div><div class="sub">{{.Row}} · {{.Settings}}</div><div class="sub">{{$.L.runs}}: {{.Runs}}</div></td>
<td><div class="verdict">{{.Verdict}}</div>{{if .Candidates}}<div class="cand">{{.Candidates}}</div>{{end}}</td>
<td class="dir">{{range .Dirs}}{{template "cell" .}}{{end}}</td>
<td class="dir">{{range .Back}}{{template "cell" .}}{{end}}</td>
<td>{{if .Cmdlet}}<div class="cmd"><code>{{range $i, $w := .CmdWords}}{{if $i}} {{end}}<span>{{$w}}</span>{{end}}</code><button class="copy" type="button" data-cmd="{{.Cmdlet}}" title="{{$.L.copy}}">{{$.L.copy}}</button></div>{{end}}{{if .FixWhere}}<div class="where">{{.FixWhere}}</div>{{else}}—{{end}}</td></tr>
{{if .More}}<tr class="more"><td colspan="5">
{{if .Warnings}}<h3>{{$.L.warning}}</h3><ul>{{range .Warnings}}<li class="warn"><span class="code">[{{.Code}}]</span> {{.Text}}</li>{{end}}</ul>{{end}}
{{if .Blockers}}<h3>{{$.L.blockers}}</h3><ul>{{range .Blockers}}<li><span class="code">[{{.Code}}]</span> <span class="en" lang="en">{{.Message}}</span>{{range .Links}} <a href="{{.Link}}">{{$.L.transcript}} ({{.Text}})</a>{{end}}</li>{{end}}</ul>{{end}}
{{if .Why}}<h3>{{$.L.fix}}</h3><ul><li><span class="en" lang="en">{{.Why}}</span>{{range .FixLinks}} <a href="{{.Link}}">{{.Text}}</a>{{end}}</li></ul>{{end}}
{{if .Notes}}<h3>{{$.L.notes}}</h3><ul>{{range .Notes}}<li><span class="code">[{{.Code}}]</span> <span class="en" lang="en">{{.Message}}</span>{{range .Links}} <a href="{{.Link}}">{{$.L.transcript}} ({{.Text}})</a>{{end}}</li>{{end}}</ul>{{end}}
{{if .With}}<h3>{{$.L.with}}</h3><p>{{.With}}</p>{{end}}
{{if .NotWith}}<h3>{{$.L.notwith}}</h3><ul>{{range .NotWith}}<li>{{.Name}}: {{$.L.gw}} {{template "cell" index .Cells 0}}; {{$.L.pt}} {{template "cell" index .Cells 1}}</li>{{end}}</ul>{{end}}
</td></tr>{{end}}
</tbody>
{{end}}</table>
<script>
document.addEventListener('click', function (e) {
  var b = e.target.closest('button.copy');
  if (!b) return;
  var text = b.getAttribute('data-cmd'), done = function () { b.textContent = b.getAttribute('title') + ' ✓'; };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, function () { fallback(); });
  } else { fallback(); }
  function fallback() {
    var r = document.createRange(); r.selectNodeContents(b.previousElementSibling);
    var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
    try { document.execCommand('copy'); done(); } catch (err) {}
  }
});
</script>
</body></html>
{{define "cell"}}{{if .Link}}<a href="{{.Link}}" title="{{.Title}}">{{.Text}}</a>{{else}}<span title="{{.Title}}">{{.Text}}</span>{{end}}{{end}}
`))

// htmlCell is an outcome as the HTML shows it: its short form, the
// explanation on hover, and the transcript it links to.
type htmlCell struct{ Text, Title, Link string }

type htmlLink struct{ Text, Link string }

type htmlFinding struct {
	Code, Message string
	Links         []htmlLink
}

type htmlWarning struct{ Code, Text string }

type htmlCandidate struct {
	Name  string
	Cells []htmlCell
}

type htmlRow struct {
	Status, Domain, Row, Settings, Runs, Verdict, Candidates string
	Dirs, Back                                               []htmlCell
	Cmdlet, FixWhere, Why                                    string
	CmdWords                                                 []string
	FixLinks                                                 []htmlLink
	Warnings                                                 []htmlWarning
	Blockers, Notes                                          []htmlFinding
	With                                                     string
	NotWith                                                  []htmlCandidate
	More                                                     bool
}

// cmdletWords splits a cmdlet line where it may wrap: between its
// parameters, each kept whole with its value ("-SaslNegotiation
// Optional"), never at a hyphen.
func cmdletWords(line string) []string {
	var out []string
	for _, w := range strings.Fields(line) {
		if n := len(out); n > 0 && !strings.HasPrefix(w, "-") && strings.HasPrefix(out[n-1], "-") && !strings.Contains(out[n-1], " ") {
			out[n-1] += " " + w
			continue
		}
		out = append(out, w)
	}
	return out
}

func cellOf(n *Negotiation, l Lang) htmlCell {
	return htmlCell{Text: l.short(n.Outcome), Title: n.Explanation, Link: scenarios.LinkTo(n.TranscriptFile)}
}

func findings(fs []Finding) []htmlFinding {
	var out []htmlFinding
	for _, f := range fs {
		h := htmlFinding{Code: f.Code, Message: f.Message}
		for _, n := range f.Negotiations {
			if n.TranscriptFile != "" {
				h.Links = append(h.Links, htmlLink{Text: string(n.Direction), Link: scenarios.LinkTo(n.TranscriptFile)})
			}
		}
		out = append(out, h)
	}
	return out
}

// WriteHTML writes the report as one page a person reads at a glance.
func WriteHTML(w io.Writer, r *Report, l Lang) error {
	st := Style{Lang: l}
	var rows []htmlRow
	for _, p := range r.Partners {
		rw := htmlRow{Status: string(p.Status), Domain: p.Entry.Domain, Row: p.Row, Settings: st.settings(p.Entry.Policy), Runs: p.Runs,
			Verdict: l.label(string(p.Status)), Blockers: findings(p.Blockers), Notes: findings(p.Notes)}
		if p.Status == Unknown {
			rw.Candidates = strings.TrimPrefix(p.Verdict(l), l.label("unknown")+" ")
		}
		if !p.Valid {
			rw.Row += " (" + l.label("invalid") + ")"
		}
		for _, f := range p.Warnings {
			text := f.Message
			if l == Korean && f.Korean != "" {
				text = f.Korean
			}
			rw.Warnings = append(rw.Warnings, htmlWarning{Code: f.Code, Text: text})
		}
		for i, n := range p.Negotiations {
			if i == 0 {
				rw.Dirs = append(rw.Dirs, cellOf(n, l))
			} else {
				rw.Back = append(rw.Back, cellOf(n, l))
			}
		}
		if f := p.Fix; f != nil {
			rw.Cmdlet, rw.Why = f.Cmdlet, f.Why
			rw.CmdWords = cmdletWords(f.Cmdlet)
			rw.FixWhere = l.label("fix-" + f.Where)
			for _, n := range f.Negotiations {
				if n.TranscriptFile != "" {
					rw.FixLinks = append(rw.FixLinks, htmlLink{Text: l.label("transcript") + " (" + l.short(n.Outcome) + ", " + string(n.Direction) + ")", Link: scenarios.LinkTo(n.TranscriptFile)})
				}
			}
		}
		if len(p.Candidates) > 0 {
			var with []string
			for _, c := range p.Candidates {
				if c.BothWays() {
					with = append(with, c.Name)
					continue
				}
				hc := htmlCandidate{Name: c.Name}
				for _, n := range c.Negotiations {
					hc.Cells = append(hc.Cells, cellOf(n, l))
				}
				rw.NotWith = append(rw.NotWith, hc)
			}
			rw.With = strings.Join(with, ", ")
		}
		rw.More = len(rw.Warnings)+len(rw.Blockers)+len(rw.Notes)+len(rw.NotWith) > 0 || rw.Why != "" || rw.With != ""
		rows = append(rows, rw)
	}
	en := ""
	if l == Korean {
		en = l.label("en-note")
	}
	return htmlPage.Execute(w, map[string]any{"Lang": string(l), "L": labels[l], "R": r, "Rows": rows,
		"Summary": summaryLine(r, l), "EnNote": en})
}
