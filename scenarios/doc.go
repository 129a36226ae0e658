// Package scenarios loads suites of negotiations from YAML files (the
// shipped ones are embedded), runs them on a pool of workers with real
// endpoints from package sim, checks each against its expectation (a
// method, a failure, or the oracle's prediction), verifies sweeps against
// the documented Lync 2013 matrix, and writes reports as text, JSON,
// JUnit XML or a self-contained HTML page.
//
// A scenario file looks like this:
//
//	suite: failures
//	description: what the file is for
//	endpoints:                  # optional named endpoints
//	  gtalk: {domain: gtalk.test, tls: NotSupported, sasl: NotSupported, dialback: true}
//	scenarios:
//	  - name: dialback-only partner vs a side without dialback
//	    initiator: gtalk        # a name, or an endpoint written out
//	    receiver: {domain: lync.test, tls: Optional, sasl: Optional, dialback: false}
//	    direction: one          # or both
//	    expect: {fail: {step: dialback, condition: policy-violation, by: initiator}}
//	sweeps:
//	  - name: matrix
//	    rows: all               # or a list of row ids: [M1, M7]
//	    partners: all
//	    directions: both
//	    partner_certs: [valid]
//	    strict: [true]
//	    expect: predicted       # each negotiation against the oracle
//	    compare_rows: documented # and each row's methods against the matrix
//
// Endpoint keys: domain, tls, sasl, dialback, cert, strict, secret,
// listed (false keeps it out of the address book), silent_at, timeout.
// An expectation is a method id, "predicted", "fail", or
// {fail: {step, condition, by}} with any of the three fields.
package scenarios
