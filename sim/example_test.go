package sim_test

import (
	"context"
	"fmt"

	"xmppneg/policy"
	"xmppneg/sim"
)

func ExamplePair() {
	lync, _ := policy.ParseSpec("tls=Required,sasl=Optional,dialback=true")
	gtalk, _ := policy.ParseSpec("tls=NotSupported,sasl=NotSupported,dialback=true")
	results, err := sim.Pair(context.Background(),
		sim.Party{Domain: "lync.test", Settings: lync},
		sim.Party{Domain: "gtalk.test", Settings: gtalk},
		sim.PairOptions{Both: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range results {
		fmt.Println(r.Outcome)
	}
	// Output:
	// failed at starttls (policy-violation by initiator)
	// failed at starttls (unsupported-feature by initiator)
}

func ExampleDialbackKey() {
	// The test vector of XEP-0185.
	fmt.Println(sim.DialbackKey("s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F"))
	// Output: 37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643
}
