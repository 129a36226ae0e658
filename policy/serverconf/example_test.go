package serverconf_test

import (
	"fmt"

	"xmppneg/policy/serverconf"
)

// Debian's shipped ejabberd.yml comes to the ejabberd-23-example profile
// exactly: STARTTLS required and dialback.
func ExampleLoad() {
	c, err := serverconf.Load("testdata/debian/ejabberd/ejabberd.yml", serverconf.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range c.Hosts {
		p, diff := serverconf.Closest(h.Settings)
		fmt.Println(h.Name, h.Knobs["s2s_use_starttls"], h.Knobs["dialback"], p.Name, len(diff))
		fmt.Println(h.Attribution()["tls"])
	}
	// Output:
	// localhost required true ejabberd-23-example 0
	// testdata/debian/ejabberd/ejabberd.yml:127
}

// A file the server would refuse is refused with the server's reason.
func ExampleRefusedError() {
	_, err := serverconf.Load("../../scenarios/examples/ejabberd/ejabberd-typo.yml", serverconf.Options{})
	fmt.Println(err)
	// Output:
	// ../../scenarios/examples/ejabberd/ejabberd-typo.yml:7: ejabberd would refuse this configuration: Unknown option: s2s_use_startls. Did you mean s2s_use_starttls?
}

// The one-line change of the file that turns a knob, for fixes.
func ExampleChange() {
	_, h, _ := serverconf.Resolve("../../scenarios/examples/prosody/prosody-secure-auth.cfg.lua#example.org", serverconf.Options{})
	for _, c := range h.Changes {
		if c.Knobs["s2s_secure_auth"] == "false" {
			fmt.Println(c.Edit)
		}
	}
	// Output:
	// ../../scenarios/examples/prosody/prosody-secure-auth.cfg.lua:7: s2s_secure_auth = false
}
