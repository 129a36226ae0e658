package scenarios

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"xmppneg/policy"
	"xmppneg/policy/outcome"
)

// htmlCell is one half of a grid cell: one direction of a row/partner pair.
type htmlCell struct {
	Class, Label, Title, Link string
	Bad                       bool
}

type htmlGrid struct {
	// Section, when set, opens a group of grids: one per refusal point.
	Section  string
	Title    string
	Open     bool
	Partners []htmlLabel
	Rows     []htmlGridRow
	// RowHead and Directions name the dimensions: a row of the matrix or
	// a real server's setting, and who initiates in each half of a cell.
	RowHead, Directions string
}

// htmlLabel is a row or column heading: a short id and its settings.
type htmlLabel struct{ ID, Short, Title string }

type htmlGridRow struct {
	Row   htmlLabel
	Cells [][2]*htmlCell // per partner: row initiates, partner initiates
}

type htmlPage struct {
	Title           string
	Summary         Summary
	OK              bool
	Interrupted     bool
	Seconds         string
	Suites          string
	Grids           []htmlGrid
	Full            []htmlMatrixRow
	Witnesses       []string
	Inconsistencies []Evidence
	Cases           []htmlCase
	HasRows         bool
	ShowMatrix      bool
}

type htmlCase struct {
	*Negotiation
	Status, Expected string
}

type htmlMatrixRow struct {
	Row      policy.Row
	Observed string
	Agree    bool
	HasCheck bool
	Warnings string
}

var methodLabels = map[outcome.Method]string{outcome.SASLOverTLS: "S", outcome.TLSDialback: "D", outcome.TCPDialback: "d"}

func cellFor(n *Negotiation) *htmlCell {
	if n == nil || n.Result == nil {
		return nil
	}
	c := &htmlCell{Class: "failed", Label: "✗", Link: LinkTo(n.Transcript), Bad: !n.Pass}
	if o := n.Result.Outcome; o.OK() {
		c.Class, c.Label = o.Method.String(), methodLabels[o.Method]
	}
	c.Title = fmt.Sprintf("%s: %s\n%s\nexpected: %s", direction(n.Case), n.Case.Name, n.Result.Explain(), expectedText(n))
	if n.Note != "" {
		c.Title += "\nnote: " + n.Note
	}
	if c.Bad {
		c.Title += "\nDISAGREES: " + n.Why
	}
	return c
}

func grids(r *Report) []htmlGrid {
	var out []htmlGrid
	for _, s := range r.Suites {
		for _, sw := range s.Sweeps {
			type key struct{ cert, refuse string }
			byKey := map[key]map[[3]string]*Negotiation{}
			var keys []key
			for _, n := range r.Negotiations {
				c := n.Case
				if c.Suite != sw.Suite || c.Sweep != sw.Name || n.Result == nil {
					continue
				}
				k := key{c.PartnerCert, c.Refuse}
				if byKey[k] == nil {
					byKey[k] = map[[3]string]*Negotiation{}
					keys = append(keys, k)
				}
				byKey[k][[3]string{c.Row, c.Partner, fmt.Sprint(c.RowInitiates)}] = n
			}
			// One section per refusal point, in the order of
			// policy.RefusalPoints, each with its certificate states.
			sort.SliceStable(keys, func(i, j int) bool { return refusalOrder(keys[i].refuse) < refusalOrder(keys[j].refuse) })
			for i, k := range keys {
				g := htmlGrid{Open: i == 0, RowHead: "row", Directions: "left half: the row initiates; right half: the partner initiates"}
				g.Title = fmt.Sprintf("%s / %s: partner certificate %s, endpoints refusing an invalid certificate at %s", sw.Suite, sw.Name, k.cert, k.refuse)
				if sw.Federation {
					g.RowHead = sw.RowServer + " setting"
					g.Directions = "left half: the row's " + sw.RowServer + " initiates; right half: the column's " + sw.PartnerServer + " initiates"
					g.Title = fmt.Sprintf("%s / %s: real %s (rows) meeting real %s (columns)", sw.Suite, sw.Name, sw.RowServer, sw.PartnerServer)
				} else if sw.Server != "" {
					g.RowHead = sw.Server + " setting"
					g.Directions = "left half: " + sw.Server + " initiates; right half: the harness initiates"
					g.Title = fmt.Sprintf("%s / %s: real %s against harness partners with certificate %s, refusing at %s", sw.Suite, sw.Name, sw.Server, k.cert, k.refuse)
				}
				for _, id := range sw.Partners {
					g.Partners = append(g.Partners, htmlLabel{ID: id, Short: sw.PartnerShort[id], Title: sw.PartnerTitles[id]})
				}
				for _, id := range sw.Rows {
					gr := htmlGridRow{Row: htmlLabel{ID: id, Title: sw.Titles[id]}}
					if row, ok := policy.Full.Row(id); ok && sw.Server == "" {
						gr.Row.Short = row.Policy.Short()
					}
					for _, p := range g.Partners {
						gr.Cells = append(gr.Cells, [2]*htmlCell{
							cellFor(byKey[k][[3]string{id, p.ID, "true"}]),
							cellFor(byKey[k][[3]string{id, p.ID, "false"}]),
						})
					}
					g.Rows = append(g.Rows, gr)
				}
				if len(keys) > 1 && (i == 0 || keys[i-1].refuse != k.refuse) {
					g.Section = fmt.Sprintf("%s / %s: %s", sw.Suite, sw.Name, refusalSection(k.refuse))
				}
				out = append(out, g)
			}
		}
	}
	return out
}

func refusalOrder(point string) int {
	for i, p := range policy.RefusalPoints {
		if p == point {
			return i
		}
	}
	return len(policy.RefusalPoints)
}

// refusalSection heads the grids of one refusal point.
func refusalSection(point string) string {
	switch point {
	case "handshake":
		return "an invalid certificate refused during the TLS handshake (refuse=handshake, strict=true)"
	case "after-tls":
		return "an invalid certificate refused right after TLS with <not-authorized/> (refuse=after-tls, as Prosody's s2s_secure_auth)"
	case "sasl":
		return "an invalid certificate refused only at SASL, dialback still possible (refuse=sasl, strict=false)"
	}
	return "endpoints refusing an invalid certificate as their settings say"
}

// WriteHTML writes the report as one self-contained HTML page: the
// partner grids coloured by the method that succeeded (disagreements
// outlined in red), the documented matrix beside them, and every cell
// linking to its transcript file (when transcripts were written).
func WriteHTML(w io.Writer, r *Report) error {
	page := htmlPage{Title: "xmppneg report: " + strings.Join(r.SuiteNames(), ", "), Summary: r.Summary(), OK: r.Passed(),
		Interrupted: r.Interrupted, Seconds: fmt.Sprintf("%.2f", r.Duration.Seconds()), Suites: strings.Join(r.SuiteNames(), ", "),
		Grids: grids(r), HasRows: len(r.Rows) > 0, Inconsistencies: r.Inconsistencies}
	checks := map[string]RowCheck{}
	for _, rc := range r.Rows {
		checks[rc.Row] = rc
		for _, wit := range rc.Witnesses {
			page.Witnesses = append(page.Witnesses, wit.Text(rc.Row))
		}
	}
	for _, g := range page.Grids {
		page.ShowMatrix = page.ShowMatrix || g.RowHead == "row"
	}
	page.ShowMatrix = page.ShowMatrix || page.HasRows
	for _, row := range policy.Full.Rows {
		mr := htmlMatrixRow{Row: row}
		var ws []string
		for _, f := range append(append([]policy.Finding{}, row.Errors...), row.Warnings...) {
			ws = append(ws, f.Code)
		}
		mr.Warnings = strings.Join(ws, ", ")
		if rc, ok := checks[row.ID]; ok {
			mr.HasCheck, mr.Observed, mr.Agree = true, rc.Observed.Names(), rc.Agree
		}
		page.Full = append(page.Full, mr)
	}
	for _, n := range r.Negotiations {
		if n.Case.Sweep == "" || !n.Pass {
			page.Cases = append(page.Cases, htmlCase{Negotiation: n, Status: n.Status(), Expected: expectedText(n)})
		}
	}
	return htmlTemplate.Execute(w, page)
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"linkTo": LinkTo,
	"names":  func(ms outcome.MethodSet) string { return ms.Names() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.summary{font-size:1.1em}.ok{color:#2e7d32}.ko{color:#c62828}
.legend span{display:inline-block;padding:.1em .6em;margin-right:.5em;border-radius:3px;color:#fff}
.sasl-over-tls{background:#2e7d32}.tls-dialback{background:#1565c0}.tcp-dialback{background:#ef6c00}.failed{background:#9e9e9e}
.wrap{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}
table{border-collapse:collapse}td,th{padding:2px 4px;border:1px solid #ddd;font-size:12px}
table.grid td{padding:0;text-align:center;min-width:30px}
table.grid a,table.grid span.c{display:inline-block;width:14px;height:18px;line-height:18px;color:#fff;text-decoration:none;font-size:11px}
table.grid .bad{outline:2px solid #d50000;outline-offset:-2px;color:#ff0}
th.r{text-align:left;white-space:nowrap}
.dis{background:#ffebee}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="summary">{{if .OK}}<b class="ok">All {{.Summary.Passed}} negotiations as expected</b>{{else if .Interrupted}}<b class="ko">Interrupted after {{.Summary.Negotiations}} of {{.Summary.Selected}} negotiations</b>{{else}}<b class="ko">{{.Summary.Failed}} of {{.Summary.Negotiations}} negotiations not as expected</b>{{end}}
— {{.Summary.Runs}} real negotiations in {{.Seconds}} s (suites: {{.Suites}}).</p>
<p class="legend"><span class="sasl-over-tls">S SASL over TLS</span><span class="tls-dialback">D TLS Dialback</span><span class="tcp-dialback">d TCP Dialback</span><span class="failed">✗ failed</span>
Each cell is split by direction (see each grid). A red outline marks a result that differs from the expectation. Click a half for its transcript; hover for the explanation.</p>
{{range .Grids}}
{{if .Section}}<h2>{{.Section}}</h2>{{end}}
<details {{if .Open}}open{{end}}><summary><b>{{.Title}}</b> ({{.Directions}})</summary>
<div class="wrap"><table class="grid"><tr><th>{{.RowHead}} \ partner</th>{{range .Partners}}<th title="{{.Title}}">{{.ID}}</th>{{end}}</tr>
{{range .Rows}}<tr><th class="r" title="{{.Row.Title}}">{{.Row.ID}} {{.Row.Short}}</th>{{range .Cells}}<td>{{range .}}{{if .}}{{if .Link}}<a class="{{.Class}}{{if .Bad}} bad{{end}}" href="{{.Link}}" title="{{.Title}}">{{.Label}}</a>{{else}}<span class="c {{.Class}}{{if .Bad}} bad{{end}}" title="{{.Title}}">{{.Label}}</span>{{end}}{{end}}{{end}}</td>{{end}}</tr>
{{end}}</table>
{{if and .Open $.ShowMatrix}}{{template "matrix" $}}{{end}}
</div></details>
{{end}}
{{if and (not .Grids) .ShowMatrix}}{{template "matrix" .}}{{end}}
{{define "matrix"}}<div><h2 style="margin-top:0">The documented full matrix{{if .HasRows}} and what real negotiations achieved{{end}}</h2>
<table><tr><th>#</th><th>TLS</th><th>SASL</th><th>Dialback</th><th>documented</th>{{if .HasRows}}<th>observed</th><th></th>{{end}}<th>warnings / errors</th></tr>
{{range .Full}}<tr{{if and .HasCheck (not .Agree)}} class="dis"{{end}}><td>{{.Row.ID}}</td><td>{{.Row.Policy.TLS}}</td><td>{{.Row.Policy.SASL}}</td><td>{{.Row.Policy.Dialback}}</td><td>{{if .Row.Valid}}{{names .Row.Methods}}{{else}}invalid configuration{{end}}</td>{{if $.HasRows}}<td>{{.Observed}}</td><td>{{if .HasCheck}}{{if .Agree}}<span class="ok">agree</span>{{else}}<b class="ko">DISAGREE</b>{{end}}{{end}}</td>{{end}}<td>{{.Warnings}}</td></tr>
{{end}}</table></div>{{end}}
{{if .Witnesses}}<h2>Warnings and their witnesses</h2><ul>{{range .Witnesses}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Inconsistencies}}<h2>Inconsistencies in the document</h2><ul>{{range .Inconsistencies}}<li><b>{{range .Rows}}{{.}} {{end}}</b>{{.Message}}{{if .Verdict}}<br><i>{{.Verdict}}</i>{{end}}</li>{{end}}</ul>{{end}}
{{if .Cases}}<h2>Scenarios{{if .Grids}} (and sweep cases not as expected){{end}}</h2>
<table><tr><th></th><th>negotiation</th><th>observed</th><th>expected</th><th>explanation</th><th>transcript</th></tr>
{{range .Cases}}<tr{{if not .Pass}} class="dis"{{end}}><td>{{if .Pass}}<span class="ok">PASS</span>{{else}}<b class="ko">{{.Status}}</b>{{end}}</td><td>{{.Case.ID}}</td><td>{{.Observed}}</td><td>{{.Expected}}</td><td>{{if .Result}}{{.Result.Explain}}{{end}}{{if .Why}}<br><b>{{.Why}}</b>{{end}}{{if .Note}}<br><i>{{.Note}}</i>{{end}}{{if .ServerLog}}<details><summary>end of the server's log</summary><pre>{{.ServerLog}}</pre></details>{{end}}</td><td>{{if .Transcript}}<a href="{{linkTo .Transcript}}">transcript</a>{{end}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))
