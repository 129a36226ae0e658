// Package scenarios loads suites of negotiations from YAML files (the
// shipped ones are embedded), runs them on a pool of workers with real
// endpoints from package sim and real servers from package realserver,
// checks each against its expectation (a method, a failure, or the
// oracle's prediction), verifies sweeps against the documented Lync 2013
// matrix, and builds one Report that every writer renders: text, JSON,
// JSON Lines, JUnit XML or a self-contained HTML page.
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
//	  - name: a real Prosody with s2s_secure_auth
//	    initiator: {server: prosody, s2s_secure_auth: true}
//	    receiver: {domain: lync.test}
//	    expect: predicted-outcome
//	sweeps:
//	  - name: matrix
//	    rows: all               # or a list of row ids: [M1, M7]
//	    partners: all           # rows of the full matrix (M1-M18) or the common table (C1-C4)
//	    directions: both
//	    partner_certs: [valid]
//	    strict: [true]
//	    expect: predicted       # each negotiation against the oracle
//	    compare_rows: documented # and each row's methods against the matrix
//	  - name: knobs             # a real server's settings instead of rows
//	    server: ejabberd
//	    settings: all           # or a list: [{s2s_use_starttls: optional, dialback: false}]
//	    partners: [C1, C3]
//	    timeout: 2s
//	    expect: predicted-outcome
//
// Endpoint keys: domain, tls, sasl, dialback, cert, strict, secret,
// listed (false keeps it out of the address book), silent_at, faults,
// timeout, max_element_bytes; or server (prosody, ejabberd) with that
// server's knobs and domain. An expectation is a method id, "fail",
// {fail: {step, condition, by}} with any of the three fields, "predicted"
// (the oracle's outcome: the same method, or a failure at the same step
// with the same condition raised by the same side) or "predicted-outcome"
// (the same method, or any failure: how real servers are compared, with
// the differences noted in the report).
package scenarios
