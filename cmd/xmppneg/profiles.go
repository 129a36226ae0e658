package main

import (
	"flag"
	"fmt"
	"text/tabwriter"

	"xmppneg/policy"
)

func init() {
	register(&command{
		name:    "profiles",
		summary: "List the server profiles (how Prosody, ejabberd, jabberd2, a Lync gateway… negotiate) that a spec can start from with profile=NAME.",
		usage:   "[NAME] [-o " + formatUsage(answerFormats...) + "]",
		example: "xmppneg profiles\n" +
			"xmppneg profiles ejabberd-23-example\n" +
			"xmppneg negotiate --initiator cert=no-client-auth --receiver profile=ejabberd-23-example",
		setup: setupProfiles,
	})
}

// profileView is a profile as the command shows it: its settings in a
// spec's words, in the Lync cmdlet's words, and knob by knob.
type profileView struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Source      string             `json:"source"`
	Server      string             `json:"server,omitempty"`
	Spec        string             `json:"spec"`
	Partner     string             `json:"partner"`
	Cert        string             `json:"cert"`
	Knobs       []policy.KnobValue `json:"knobs"`
}

func viewProfile(p policy.Profile) profileView {
	return profileView{Name: p.Name, Description: p.Description, Source: p.Source, Server: p.Server,
		Spec: p.Settings.String(), Partner: p.Settings.Policy.Partner(), Cert: string(p.Settings.Cert),
		Knobs: p.Settings.Behaviour.Knobs()}
}

func setupProfiles(fs *flag.FlagSet, e *env) func([]string) int {
	out := outputFlag(fs, answerFormats...)
	return func(args []string) int {
		var views []profileView
		switch len(args) {
		case 0:
			for _, p := range policy.Profiles() {
				views = append(views, viewProfile(p))
			}
		case 1:
			p, err := policy.LookupProfile(args[0])
			if err != nil {
				e.errorf("%v", err)
				return exitUsage
			}
			views = append(views, viewProfile(p))
		default:
			e.errorf("unexpected argument %q: give at most one profile name", args[1])
			return exitUsage
		}
		if *out == "json" {
			if len(args) == 1 {
				writeJSON(e.stdout, views[0])
			} else {
				writeJSON(e.stdout, views)
			}
			return exitOK
		}
		if len(args) == 1 {
			printProfile(e, views[0])
			return exitOK
		}
		for i, v := range views {
			if i > 0 {
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintf(e.stdout, "%s\n  %s\n", e.paint("bold", v.Name), v.Description)
			w := tabwriter.NewWriter(e.stdout, 0, 0, 1, ' ', 0)
			fmt.Fprintf(w, "  spec:\t%s\n", v.Spec)
			fmt.Fprintf(w, "  partner:\t%s\n", v.Partner)
			fmt.Fprintf(w, "  source:\t%s\n", v.Source)
			if v.Server != "" {
				fmt.Fprintf(w, "  server:\t%s\n", v.Server)
			}
			w.Flush()
		}
		fmt.Fprintf(e.stdout, "\nUse one in a spec, then override: --receiver 'profile=prosody-0.12,cert=expired'.\n"+
			"'xmppneg profiles NAME' shows every behaviour knob of one profile.\n")
		return exitOK
	}
}

// printProfile shows one profile with every knob, marking those that
// differ from the harness's own behaviour.
func printProfile(e *env, v profileView) {
	fmt.Fprintf(e.stdout, "%s: %s\n\n", e.paint("bold", v.Name), v.Description)
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "spec:\t%s\n", v.Spec)
	fmt.Fprintf(w, "partner:\tNew-CsXmppAllowedPartner %s\n", v.Partner)
	fmt.Fprintf(w, "certificate:\t%s\n", v.Cert)
	fmt.Fprintf(w, "source:\t%s\n", v.Source)
	if v.Server != "" {
		fmt.Fprintf(w, "server:\t%s\n", v.Server)
	}
	w.Flush()
	fmt.Fprintf(e.stdout, "\nBehaviour knobs (* differs from the harness's own, profile xmppneg):\n")
	w = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, k := range v.Knobs {
		mark := " "
		if !k.Default {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %s=%s\t%s\n", mark, k.Key, k.Value, k.Doc)
	}
	w.Flush()
	fmt.Fprintf(e.stdout, "\nEvery knob is also a spec key that overrides the profile: --receiver 'profile=%s,refuse=after-tls'.\n", v.Name)
}
