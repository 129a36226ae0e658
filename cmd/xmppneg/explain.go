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
	"xmppneg/policy/printable"
	"xmppneg/policy/serverconf"
)

func init() {
	register(&command{
		name:    "explain",
		summary: "Read a Prosody, ejabberd or jabberd2 configuration file as the server does and say what each host amounts to for s2s: the settings, the closest profile, where each value comes from, what is not modelled, and what an operator should know.",
		usage:   "FILE [--host DOMAIN] [--server prosody|ejabberd|jabberd2] [--server-version V] [-o " + formatUsage(answerFormats...) + "]",
		example: "xmppneg explain /etc/prosody/prosody.cfg.lua\n" +
			"xmppneg explain /etc/ejabberd/ejabberd.yml --host example.org -o json\n" +
			"xmppneg negotiate --initiator config=/etc/prosody/prosody.cfg.lua#example.org --receiver profile=ejabberd-23-example --direction both",
		setup: setupExplain,
	})
}

// explainHost is one host as explain shows it.
type explainHost struct {
	Host        string                 `json:"host"`
	Kind        string                 `json:"kind"`
	Disabled    bool                   `json:"disabled"`
	Settings    string                 `json:"settings"` // a spec negotiate accepts
	Knobs       map[string]string      `json:"knobs"`    // the launcher's knobs (xmppneg server --set)
	Profile     string                 `json:"profile"`
	Differences []string               `json:"differences"`
	Sources     map[string]string      `json:"sources"`
	Options     []serverconf.Option    `json:"options"`
	NotModelled []string               `json:"not_modelled"`
	Warnings    []explainFinding       `json:"warnings"`
	Exceptions  []serverconf.Exception `json:"exceptions"`

	settings policy.Settings
}

type explainFinding struct {
	Code    string `json:"code"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

type explainDoc struct {
	File     string           `json:"file"`
	Server   string           `json:"server"`
	Files    []string         `json:"files"`
	Warnings []explainFinding `json:"warnings"`
	Hosts    []explainHost    `json:"hosts"`
	// Refused is set when the server would not start with the file.
	Refused *explainFinding `json:"refused,omitempty"`
}

func findings(fs []serverconf.Finding) []explainFinding {
	out := []explainFinding{}
	for _, f := range fs {
		src := ""
		if !f.Source.IsZero() {
			src = f.Source.String()
		}
		out = append(out, explainFinding{Code: f.Code, Source: src, Message: printable.String(f.Message)})
	}
	return out
}

func viewHost(h *serverconf.Host) explainHost {
	p, diff := serverconf.Closest(h.Settings)
	v := explainHost{Host: h.Name, Kind: h.Kind, Disabled: h.Disabled, Settings: h.Settings.String(), Knobs: h.Knobs,
		Profile: p.Name, Differences: diff, Sources: h.Attribution(), Options: h.Options,
		NotModelled: []string{}, Warnings: findings(h.Warnings), Exceptions: h.Exceptions, settings: h.Settings}
	for _, f := range h.NotModelled {
		v.NotModelled = append(v.NotModelled, printable.String(f.String()))
	}
	if v.Exceptions == nil {
		v.Exceptions = []serverconf.Exception{}
	}
	return v
}

func setupExplain(fs *flag.FlagSet, e *env) func([]string) int {
	host := fs.String("host", "", "only this `domain` (default: every host of the file)")
	server := fs.String("server", "", "whose semantics to read the file with: prosody, ejabberd, jabberd2 (default: told from the file's name)")
	version := fs.String("server-version", "", "the server version whose loader to mirror: Prosody 0.12 (default) or 13, ejabberd 23.01 (default) or 24.12, jabberd2 2.7")
	out := outputFlag(fs, answerFormats...)
	return func(args []string) int {
		if len(args) != 1 {
			e.errorf("give one configuration file (see 'xmppneg explain --help')")
			return exitUsage
		}
		c, err := serverconf.Load(args[0], serverconf.Options{Server: serverconf.Server(*server), Version: *version})
		var refused *serverconf.RefusedError
		if errors.As(err, &refused) {
			doc := explainDoc{File: args[0], Server: string(refused.Server), Files: []string{}, Warnings: []explainFinding{}, Hosts: []explainHost{},
				Refused: &explainFinding{Code: "refused", Source: refused.Source.String(), Message: printable.String(refused.Reason)}}
			if *out == "json" {
				writeJSONDoc(e.stdout, doc)
			} else {
				fmt.Fprintf(e.stdout, "%s: %s would refuse to start with this file:\n  %s\n", refused.Source, refused.Server, printable.String(refused.Reason))
			}
			return exitFail
		}
		if err != nil {
			e.errorf("%s", printable.String(err.Error()))
			return exitUsage
		}
		hosts := c.Hosts
		if *host != "" {
			h, err := c.Host(*host)
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			hosts = []*serverconf.Host{h}
		}
		doc := explainDoc{File: c.File, Server: string(c.Server) + " " + c.Version, Files: c.Files, Warnings: findings(c.Warnings), Hosts: []explainHost{}}
		for _, h := range hosts {
			doc.Hosts = append(doc.Hosts, viewHost(h))
		}
		if *out == "json" {
			if err := writeJSONDoc(e.stdout, doc); err != nil {
				e.errorf("%v", err)
				return exitFail
			}
			return exitOK
		}
		writeExplain(e, doc)
		return exitOK
	}
}

func writeJSONDoc(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writeExplain(e *env, doc explainDoc) {
	w := e.stdout
	fmt.Fprintf(w, "%s: %s", printable.String(doc.File), doc.Server)
	if len(doc.Files) > 1 {
		fmt.Fprintf(w, " (%d files: %s)", len(doc.Files), printable.String(strings.Join(doc.Files, ", ")))
	}
	fmt.Fprintln(w)
	for _, f := range doc.Warnings {
		fmt.Fprintf(w, "  %s %s\n", e.paint("yellow", "!"), withSource(f))
	}
	for _, h := range doc.Hosts {
		fmt.Fprintf(w, "\n%s (%s)", e.paint("bold", printable.String(h.Host)), h.Kind)
		if h.Disabled {
			fmt.Fprint(w, e.paint("yellow", " — disabled"))
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  settings:\t%s\n", h.Settings)
		prof := h.Profile
		if len(h.Differences) == 0 {
			prof += " (exactly)"
		} else {
			prof += ", except " + strings.Join(h.Differences, ", ")
		}
		fmt.Fprintf(tw, "  closest profile:\t%s\n", prof)
		tw.Flush()
		fmt.Fprintln(w, "  from the file:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, o := range h.Options {
			fmt.Fprintf(tw, "    %s\t%s = %s\n", printable.String(o.Source.String()), o.Name, printable.String(o.Value))
		}
		tw.Flush()
		fmt.Fprintln(w, "  where each setting comes from:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, kv := range serverconf.SpecValues(h.settings) {
			if src, ok := h.Sources[kv[0]]; ok && !strings.HasSuffix(src, "(observed; not an option)") {
				fmt.Fprintf(tw, "    %s=%s\t← %s\n", kv[0], kv[1], printable.String(src))
			}
		}
		tw.Flush()
		fmt.Fprintln(w, "    (every other setting is the server's observed behaviour: xmppneg profiles "+h.Profile+")")
		for _, x := range h.Exceptions {
			fmt.Fprintf(w, "  for %s: %s (%s)\n", printable.String(x.Domain), knobText(x.Knobs), x.Why)
		}
		if len(h.Warnings) > 0 {
			fmt.Fprintln(w, "  warnings:")
			for _, f := range h.Warnings {
				fmt.Fprintf(w, "    %s %s\n", e.paint("yellow", "!"), withSource(f))
			}
		}
		if len(h.NotModelled) > 0 {
			fmt.Fprintln(w, "  not modelled (the prediction does not follow these):")
			for _, n := range h.NotModelled {
				fmt.Fprintf(w, "    - %s\n", strings.TrimPrefix(n, "not modelled: ")) // escaped in viewHost
			}
		}
		if !h.Disabled {
			name := h.Host
			if name == "*" {
				name = "example.org"
			}
			fmt.Fprintf(w, "  try it: xmppneg negotiate --initiator 'config=%s#%s' --initiator-domain %s --receiver profile=%s --direction both\n", printable.String(doc.File), printable.String(name), printable.String(name), h.Profile)
		}
	}
}

func withSource(f explainFinding) string {
	if f.Source == "" {
		return f.Message
	}
	return f.Message + " (" + printable.String(f.Source) + ")"
}

func knobText(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}
