package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/policy/report"
)

func init() {
	register(&command{
		name:    "check",
		summary: "Validate one partner configuration against the documented full matrix.",
		usage:   "--tls LEVEL --sasl LEVEL --dialback BOOL [-o " + formatUsage(answerFormats...) + "]  |  [-o " + formatUsage(answerFormats...) + "] New-CsXmppAllowedPartner …",
		example: "xmppneg check --tls Required --sasl Optional --dialback true\n" +
			"xmppneg check --TlsNegotiation Required --SaslNegotiation Optional --SupportDialbackNegotiation '$true'\n" +
			"xmppneg check New-CsXmppAllowedPartner -Identity jabber.example -SaslNegotiation Optional\n" +
			"xmppneg check --tls 선택 --sasl 필수 --dialback '$false' -o json",
		setup:      setupCheck,
		cmdletTail: true,
	})
}

func setupCheck(fs *flag.FlagSet, e *env) func([]string) int {
	var tls, sasl, db *string
	tls = fs.String("tls", "", "TLS negotiation: "+policy.AcceptedLevels+" (required)")
	sasl = fs.String("sasl", "", "SASL negotiation: same values as --tls (required)")
	db = fs.String("dialback", "", "dialback negotiation: "+policy.AcceptedBools+" (required)")
	// The partner cmdlet's own names, for those who think in them.
	tlsN := fs.String("TlsNegotiation", "", "the same as --tls")
	saslN := fs.String("SaslNegotiation", "", "the same as --sasl")
	dbN := fs.String("SupportDialbackNegotiation", "", "the same as --dialback")
	out := outputFlag(fs, answerFormats...)
	return func(args []string) int {
		var p policy.Policy
		var err error
		flags := []struct {
			name, alias string
			val, aval   string
			set         func(string) error
		}{
			{"tls", "TlsNegotiation", *tls, *tlsN, func(v string) (err error) { p.TLS, err = policy.ParseLevel(v); return }},
			{"sasl", "SaslNegotiation", *sasl, *saslN, func(v string) (err error) { p.SASL, err = policy.ParseLevel(v); return }},
			{"dialback", "SupportDialbackNegotiation", *db, *dbN, func(v string) (err error) { p.Dialback, err = policy.ParseBool(v); return }},
		}
		for _, f := range flags {
			for _, v := range []struct{ name, val string }{{f.name, f.val}, {f.alias, f.aval}} {
				if strings.HasPrefix(v.val, "-") {
					// "--dialback $true --tls Required" in bash: the flag
					// took the next flag as its value.
					e.errorf("--%s has no value (it took %q, the next flag): %s", v.name, v.val, posixDollarHint)
					return exitUsage
				}
			}
		}
		switch {
		case len(args) > 1:
			e.errorf("unexpected argument %q", args[1])
			return exitUsage
		case len(args) == 1:
			if !lyncpartner.IsCmdlet(args[0]) {
				e.errorf("unexpected argument %q: give the settings as flags, or one New-CsXmppAllowedPartner line", args[0])
				return exitUsage
			}
			for _, f := range flags {
				if f.val != "" || f.aval != "" {
					e.errorf("give the settings either as flags or as a New-CsXmppAllowedPartner line, not both")
					return exitUsage
				}
			}
			if p, err = lyncpartner.ParseCmdlet(args[0]); err != nil {
				if errors.Is(err, lyncpartner.ErrNoValue) {
					e.errorf("%v: %s", err, posixDollarHint)
					return exitUsage
				}
				e.errorf("%v", err)
				return exitUsage
			}
		default:
			for _, f := range flags {
				val := f.val
				switch {
				case val != "" && f.aval != "" && !strings.EqualFold(val, f.aval):
					e.errorf("--%s %s and --%s %s disagree: give one", f.name, val, f.alias, f.aval)
					return exitUsage
				case val == "":
					val = f.aval
				}
				if val == "" {
					e.errorf("--%s (or --%s) is required (see 'xmppneg check --help')", f.name, f.alias)
					return exitUsage
				}

				if err = f.set(val); err != nil {
					e.errorf("--%s: %v", f.name, err)
					return exitUsage
				}
			}
		}
		v, err := policy.Validate(p)
		if err != nil {
			e.errorf("%v", err)
			return exitUsage
		}
		if *out == "json" {
			writeJSON(e.stdout, v)
		} else {
			printVerdict(e, v)
		}
		if !v.Valid {
			return exitFail
		}
		return exitOK
	}
}

// posixDollarHint says why a parameter given $true has no value when the
// line was typed into bash, zsh or sh, and what to type instead.
const posixDollarHint = "in a POSIX shell (bash, zsh, sh) $true and $false are shell variables that expand to nothing; " +
	"quote them ('$true', '$false'), or write true and false"

func printVerdict(e *env, v policy.Verdict) {
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	verdict := e.paint("green", "valid")
	if !v.Valid {
		verdict = e.paint("red", "INVALID")
	}
	fmt.Fprintf(w, "Row:\t%s of the full matrix\n", v.Row)
	fmt.Fprintf(w, "Settings:\tTLS %s, SASL %s, Dialback %t\n", v.TLS, v.SASL, v.Dialback)
	fmt.Fprintf(w, "Verdict:\t%s\n", verdict)
	fmt.Fprintf(w, "Expected methods:\t%s\n", v.Methods.Names())
	w.Flush()
	for _, f := range v.Errors {
		fmt.Fprintf(e.stdout, "%s [%s] %s (%s)\n", e.paint("red", "error:"), f.Code, f.Message, f.Korean)
	}
	for _, f := range v.Warnings {
		fmt.Fprintf(e.stdout, "%s [%s] %s (%s)\n", e.paint("yellow", "warning:"), f.Code, f.Message, f.Korean)
	}
	if v.Note != nil {
		fmt.Fprintf(e.stdout, "note: %s (%s)\n", v.Note.En, v.Note.Ko)
	}
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	// Encoding values of our own types cannot fail.
	_ = enc.Encode(v)
}

func init() {
	register(&command{
		name:    "matrix",
		summary: "Print the documented tables (common C1–C4, full M1–M18) and the inconsistencies found in them.",
		usage:   "[-o " + formatUsage(matrixFormats...) + "] [--korean]",
		example: "xmppneg matrix\nxmppneg matrix -o markdown --korean",
		setup:   setupMatrix,
	})
}

// matrixFormats are matrix's: the answers' and Markdown, for a document.
var matrixFormats = append(answerFormats[:len(answerFormats):len(answerFormats)], report.Markdown)

func setupMatrix(fs *flag.FlagSet, e *env) func([]string) int {
	out := outputFlag(fs, matrixFormats...)
	ko := fs.Bool("korean", false, "show the notes in the Korean original instead of the English rendering")
	return func(args []string) int {
		if !noArgs(e, args) {
			return exitUsage
		}
		tables := []policy.Table{policy.Common, policy.Full}
		incs := policy.Inconsistencies()
		switch *out {
		case "json":
			writeJSON(e.stdout, struct {
				Tables          []policy.Table         `json:"tables"`
				Inconsistencies []policy.Inconsistency `json:"inconsistencies"`
			}{tables, incs})
		case "markdown":
			for _, t := range tables {
				writeMarkdownTable(e.stdout, t, *ko)
			}
			fmt.Fprintln(e.stdout, "## Inconsistencies found")
			fmt.Fprintln(e.stdout)
			for _, inc := range incs {
				fmt.Fprintf(e.stdout, "- **%s** (%s): %s\n", strings.Join(inc.Rows, "/"), inc.Code, inc.Message)
			}
		default:
			for _, t := range tables {
				writeTextTable(e, t, *ko)
			}
			fmt.Fprintln(e.stdout, e.paint("bold", "Inconsistencies found in the document"))
			for _, inc := range incs {
				fmt.Fprintf(e.stdout, "  %s %s: %s\n", e.paint("yellow", "!"), strings.Join(inc.Rows, "/"), inc.Message)
			}
		}
		return exitOK
	}
}

func rowNote(r policy.Row, ko bool) string {
	var parts []string
	for _, f := range append(append([]policy.Finding{}, r.Errors...), r.Warnings...) {
		msg := f.Message
		if ko {
			msg = f.Korean
		}
		kind := "WARNING"
		for _, x := range r.Errors {
			if x == f {
				kind = "ERROR"
			}
		}
		parts = append(parts, kind+" ["+f.Code+"]: "+msg)
	}
	if r.Note != (policy.Text{}) {
		if ko {
			parts = append(parts, r.Note.Ko)
		} else {
			parts = append(parts, r.Note.En)
		}
	}
	return strings.Join(parts, " ")
}

func methodsCell(r policy.Row) string {
	if !r.Valid {
		return "invalid configuration"
	}
	return r.Methods.Names()
}

func title(t policy.Table, ko bool) string {
	if ko {
		return t.Title.Ko
	}
	return t.Title.En
}

func writeTextTable(e *env, t policy.Table, ko bool) {
	fmt.Fprintln(e.stdout, e.paint("bold", title(t, ko)))
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  #\tTLS\tSASL\tDialback\tExpected methods\tNote")
	for _, r := range t.Rows {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%t\t%s\t%s\n", r.ID, r.Policy.TLS, r.Policy.SASL, r.Policy.Dialback, methodsCell(r), rowNote(r, ko))
	}
	w.Flush()
	fmt.Fprintln(e.stdout)
}

func writeMarkdownTable(w io.Writer, t policy.Table, ko bool) {
	fmt.Fprintf(w, "## %s\n\n| # | TLS | SASL | Dialback | Expected methods | Note |\n|---|---|---|---|---|---|\n", title(t, ko))
	for _, r := range t.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %t | %s | %s |\n", r.ID, r.Policy.TLS, r.Policy.SASL, r.Policy.Dialback, methodsCell(r),
			strings.ReplaceAll(rowNote(r, ko), "|", `\|`))
	}
	fmt.Fprintln(w)
}
