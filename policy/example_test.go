package policy_test

import (
	"fmt"

	"xmppneg/policy"
)

func ExampleValidate() {
	v, _ := policy.Validate(policy.Policy{TLS: policy.Optional, SASL: policy.Required, Dialback: false})
	fmt.Println(v.Row, v.Valid, v.Methods)
	for _, w := range v.Warnings {
		fmt.Println(w.Code+":", w.Message)
	}
	// Output:
	// M4 true sasl-over-tls
	// sasl-needs-tls: SASL needs TLS; leaving TLS optional can make session negotiation fail.
}

func ExampleInconsistencies() {
	for _, inc := range policy.Inconsistencies() {
		fmt.Println(inc.Rows, "extra:", inc.Extra)
	}
	// Output:
	// [C2 M7] extra: tcp-dialback
}

func ExampleParseSpec() {
	s, err := policy.ParseSpec("tls=Required,sasl=Optional,dialback=$true,cert=expired")
	fmt.Println(s, err)
	_, err = policy.ParseSpec("tls=Sometimes")
	fmt.Println(err)
	// Output:
	// tls=Required,sasl=Optional,dialback=true,cert=expired,strict=true <nil>
	// tls: invalid level "Sometimes": accepted values are Required, Optional, NotSupported (any case; also "Not supported", 필수, 선택, 지원 안 됨)
}
