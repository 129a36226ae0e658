package outcome_test

import (
	"fmt"

	"xmppneg/policy/outcome"
)

func ExampleOutcome_Match() {
	observed := outcome.Failed(outcome.Failure{
		Step: outcome.StepStartTLS, Condition: outcome.UnsupportedFeature, By: outcome.Initiator,
		Message: "receiver requires TLS but initiator does not support it",
	})
	// An expectation may leave the condition and the side open.
	want := outcome.Failed(outcome.Failure{Step: outcome.StepStartTLS})
	fmt.Println(observed)
	fmt.Println(observed.Match(want), observed.Match(outcome.Succeeded(outcome.TCPDialback)))
	// Output:
	// failed at starttls (unsupported-feature by initiator)
	// true false
}
