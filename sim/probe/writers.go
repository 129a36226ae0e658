package probe

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"xmppneg/certs"
	"xmppneg/policy/report"
	"xmppneg/sim/resolve"
)

// Batch is the probes of one command: each domain's report, and how long
// they took together.
type Batch struct {
	Reports []*Report
	Elapsed time.Duration
}

// Options is what the text report takes: whether to print transcripts.
type Options struct{ Transcript bool }

// Writers are the probe's writers, one per format, text first as the
// default: the -o values of probe. The text is one report in full, or a
// line per domain when there are several.
var Writers = report.WithCases(
	report.Writer[Batch, Options]{Format: report.Text, Write: func(w io.Writer, b Batch, o Options) error {
		if len(b.Reports) == 1 {
			WriteText(w, b.Reports[0], o.Transcript)
		} else {
			WriteSummary(w, b.Reports, b.Elapsed)
		}
		return nil
	}},
	report.Writer[Batch, Options]{Format: report.JSON, Write: func(w io.Writer, b Batch, _ Options) error { return WriteJSON(w, b.Reports) }},
	report.Writer[Batch, Options]{Format: report.HTML, Write: func(w io.Writer, b Batch, _ Options) error { return WriteHTML(w, b.Reports) }},
)

// Verdict is one word for a report: "works", "fails" or "unreachable".
func (r *Report) Verdict() string {
	switch {
	case r.Negotiation != nil && r.Negotiation.Outcome.OK() && !r.Lenient:
		return "works"
	case r.reachable():
		return "fails"
	}
	return "unreachable"
}

func (r *Report) reachable() bool {
	for _, t := range r.Targets {
		if t.Reachable {
			return true
		}
	}
	return false
}

// Method is what the negotiation came to, as a person reads it.
func (r *Report) Method() string {
	if r.Negotiation == nil {
		return ""
	}
	if o := r.Negotiation.Outcome; o.OK() {
		return o.Method.Name()
	}
	if r.Negotiation.AuthenticatedThenFailed() {
		return r.Negotiation.Authenticated.Name() + ", no reply"
	}
	return r.Negotiation.Outcome.String()
}

// Versions is the TLS versions the first reachable target accepted.
func (r *Report) Versions() string {
	for _, t := range r.Targets {
		if t.Reachable {
			if acc := t.Accepted(); len(acc) > 0 {
				return "TLS " + strings.Join(acc, ", ")
			}
			return "none"
		}
	}
	return ""
}

// Certificate is the verdict on the first certificate seen, and its
// expiry.
func (r *Report) Certificate() string {
	for _, t := range r.Targets {
		if c := t.Chain; c != nil {
			v := "valid"
			if r.Learned != nil && r.Learned.Cert != certs.Valid {
				v = string(r.Learned.Cert)
			}
			return fmt.Sprintf("%s: %s; %s", v, c.Trust, c.Validity)
		}
	}
	return ""
}

// WriteText writes one report in full.
func WriteText(w io.Writer, r *Report, transcript bool) {
	fmt.Fprintf(w, "%s, probed as %s\n", r.Domain, r.Harness)
	if res := r.Resolution; res != nil {
		fmt.Fprintf(w, "\nDNS:\n")
		for _, q := range res.Queries {
			fmt.Fprintf(w, "  %s %s → %s\n", q.Type, q.Name, q.Answer)
		}
		if res.Dropped > 0 {
			fmt.Fprintf(w, "  %d more targets not tried (at most %d are)\n", res.Dropped, resolve.MaxTargets)
		}
		if res.DroppedAddrs > 0 {
			fmt.Fprintf(w, "  %d more addresses not tried (at most %d in all are, each once)\n", res.DroppedAddrs, resolve.MaxAddrs)
		}
	}
	for i, t := range r.Targets {
		how := t.StartTLS
		if !t.DirectTLS && how != "" {
			how = "STARTTLS " + how
		}
		fmt.Fprintf(w, "\ntarget %d: %s:%d (%s), from %s\n", i+1, t.Host, t.Port, how, t.Via)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if t.Addr != "" {
			fmt.Fprintf(tw, "  address:\t%s\n", t.Addr)
		}
		if !t.Reachable {
			fmt.Fprintf(tw, "  reachable:\tno: %s\n", t.Error)
			tw.Flush()
			continue
		}
		if t.Features != "" {
			fmt.Fprintf(tw, "  offered before TLS:\t%s\n", t.Features)
		}
		var vs []string
		for _, v := range t.Versions {
			state := "accepted"
			switch {
			case v.TimedOut:
				state = "timed out"
			case !v.Accepted:
				state = "refused"
			}
			vs = append(vs, v.Version+" "+state)
		}
		fmt.Fprintf(tw, "  TLS versions:\t%s\n", strings.Join(vs, ", "))
		if t.Cipher != "" {
			fmt.Fprintf(tw, "  cipher:\t%s\n", t.Cipher)
		}
		if c := t.Chain; c != nil {
			fmt.Fprintf(tw, "  certificate:\t%s, issued by %s\n", c.Subject, c.Issuer)
			fmt.Fprintf(tw, "  names:\t%s (the XMPP domain: %s)\n", strings.Join(c.Names, ", "), map[bool]string{true: "covered", false: "NOT covered"}[c.NamesFor])
			fmt.Fprintf(tw, "  chain:\t%d sent, %s; %s; %s\n", c.Sent, map[bool]string{true: "complete", false: "INCOMPLETE"}[c.Complete], c.Trust, c.Validity)
			fmt.Fprintf(tw, "  expires:\t%s (%s)\n", c.NotAfter.UTC().Format(time.RFC3339), c.Validity)
			fmt.Fprintf(tw, "  purposes:\t%s\n", c.Purposes)
			if c.Problem != "" {
				fmt.Fprintf(tw, "  problem:\t%s\n", c.Problem)
			}
		}
		tw.Flush()
	}
	if n := r.Negotiation; n != nil {
		fmt.Fprintf(w, "\nnegotiation (%s → %s):\n", n.Initiator, n.Receiver)
		for _, a := range n.Attempts {
			fmt.Fprintf(w, "  tried %s (%s): %s\n", a.Addr, a.Target.Via, a.Result)
		}
		for _, o := range n.Offers {
			when := "before TLS"
			if o.TLS {
				when = "after TLS"
			}
			fmt.Fprintf(w, "  offered %s: %s\n", when, o.Features)
		}
		if n.AuthenticatedThenFailed() {
			// The authentication happened; what became of the reply is
			// a finding of its own.
			fmt.Fprintf(w, "  %s: authenticated with %s\n", n.Route(), n.Authenticated.Name())
			fmt.Fprintf(w, "  reply path: %s\n", r.Reply)
		} else {
			fmt.Fprintf(w, "  %s\n", n.Explain())
		}
		if transcript {
			fmt.Fprintf(w, "%s\n", indent(n.TranscriptText(), "    "))
		}
	}
	if len(r.Inbound) > 0 {
		fmt.Fprintf(w, "\nconnections %s opened back to the harness:\n", r.Domain)
		for _, in := range r.Inbound {
			fmt.Fprintf(w, "  %s as %s: %s\n", in.At.Format("15:04:05.000"), in.Role, in.Explain())
			for _, note := range in.Notes {
				fmt.Fprintf(w, "    %s\n", note)
			}
			if transcript {
				fmt.Fprintf(w, "%s\n", indent(in.TranscriptText(), "    "))
			}
		}
	}
	if l := r.Learned; l != nil {
		writeLearned(w, r, l)
	}
	fmt.Fprintln(w)
	for _, d := range r.Diagnosis {
		fmt.Fprintf(w, "diagnosis: %s\n", d)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "finding: %s\n", f)
	}
}

// writeLearned writes the server's settings as derived, the closest
// profile with its evidence, what is not known, and what each shipped
// profile comes to with the server.
func writeLearned(w io.Writer, r *Report, l *Learned) {
	fmt.Fprintf(w, "\n%s as a partner sees it (derived from the above):\n", r.Domain)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  settings:\t%s (%s)\n", l.Settings.Policy.Partner(), l.Row)
	fmt.Fprintf(tw, "  certificate:\t%s (%s)\n", l.Cert, l.CertWhy)
	closest := l.Profile
	if len(l.AsClose) > 0 {
		closest += " (as close: " + strings.Join(l.AsClose, ", ") + ")"
	}
	fmt.Fprintf(tw, "  closest profile:\t%s\n", closest)
	for _, e := range l.Evidence {
		fmt.Fprintf(tw, "    as it:\t%s\n", e)
	}
	for _, e := range l.Against {
		fmt.Fprintf(tw, "    unlike it:\t%s\n", e)
	}
	fmt.Fprintf(tw, "  as a spec:\t%s\n", l.Spec)
	for _, u := range l.Unknown {
		fmt.Fprintf(tw, "  not known:\t%s\n", u)
	}
	tw.Flush()
	if len(r.Partners) == 0 {
		return
	}
	fmt.Fprintf(w, "\nwhat each shipped profile comes to with %s (the oracle, from the settings above):\n", r.Domain)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  profile\tpartner → %s\t%s → partner\n", r.Domain, r.Domain)
	for _, v := range r.Partners {
		name := v.Profile
		if name == DefaultPartner {
			name += " (default)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, v.ToServer, v.FromServer)
	}
	tw.Flush()
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// WriteSummary writes one line per report: reachable, TLS versions,
// certificate, method, diagnosis.
func WriteSummary(w io.Writer, rs []*Report, elapsed time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "domain\tverdict\tTLS versions\tcertificate\tmethod\tdiagnosis\n")
	counts := map[string]int{}
	for _, r := range rs {
		counts[r.Verdict()]++
		diag := ""
		if len(r.Diagnosis) > 0 {
			diag = r.Diagnosis[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Domain, r.Verdict(), r.Versions(), r.Certificate(), r.Method(), diag)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d domains in %.1f s: %d work, %d fail, %d unreachable\n", len(rs), elapsed.Seconds(), counts["works"], counts["fails"], counts["unreachable"])
}

// WriteJSON writes the reports as one JSON document.
func WriteJSON(w io.Writer, rs []*Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(map[string]any{"probes": rs})
}

// WriteJUnit writes the reports as JUnit XML (their Cases).
func WriteJUnit(w io.Writer, rs []*Report, elapsed time.Duration) error {
	return report.WriteJUnit(w, Batch{Reports: rs, Elapsed: elapsed}.Cases())
}

// Cases is one case per domain: a failure when it does not authenticate,
// with the diagnosis.
func (b Batch) Cases() report.Cases {
	s := report.Suite{Name: "probe"}
	for _, r := range b.Reports {
		c := report.Case{Class: "probe", Name: r.Domain, Elapsed: r.Duration}
		if r.Verdict() != "works" {
			c.Status, c.Message, c.Text = report.Failed, strings.Join(r.Diagnosis, " "), r.Method()
		}
		s.Cases = append(s.Cases, c)
	}
	return report.Cases{Suites: []report.Suite{s}, Elapsed: b.Elapsed, Single: true}
}

var page = template.Must(template.New("probe").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>s2s probe</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.works{background:#d9f2d9}.fails{background:#f8d0d0}.unreachable{background:#e8e8e8}</style></head><body>
<h1>s2s probe: {{len .}} domains</h1>
<table><tr><th>domain</th><th>reachable</th><th>TLS versions</th><th>certificate</th><th>offered</th><th>method</th><th>diagnosis</th></tr>
{{range .}}<tr class="{{.Verdict}}"><td><b>{{.Domain}}</b></td><td>{{.Verdict}}</td><td>{{.Versions}}</td><td>{{.Certificate}}</td>
<td>{{if .Negotiation}}{{range .Negotiation.Offers}}{{.Features}}<br>{{end}}{{end}}</td><td>{{.Method}}</td>
<td>{{range .Diagnosis}}{{.}}<br>{{end}}{{range .Findings}}<i>{{.}}</i><br>{{end}}</td></tr>
{{end}}</table></body></html>
`))

// WriteHTML writes one row per domain.
func WriteHTML(w io.Writer, rs []*Report) error { return page.Execute(w, rs) }
