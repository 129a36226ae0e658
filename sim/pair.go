package sim

import (
	"context"
	"fmt"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
)

// Party is an endpoint to be started for a negotiation.
type Party struct {
	Domain   string
	Settings policy.Settings
	Faults   Faults
}

// PairOptions tune Pair.
type PairOptions struct {
	Timeout time.Duration // per negotiation; zero means DefaultTimeout
	Both    bool          // also negotiate from b to a
	PKI     *certs.PKI    // nil means certs.Default()
}

// Pair starts a and b on a network of their own, negotiates from a to b
// (and from b to a when asked), and stops both.
func Pair(ctx context.Context, a, b Party, opt PairOptions) ([]*Result, error) {
	if a.Domain == b.Domain {
		return nil, fmt.Errorf("sim: both parties are %s; give them different domains", a.Domain)
	}
	n := NewNetwork()
	var eps []*Endpoint
	defer func() {
		for _, e := range eps {
			e.Close()
		}
	}()
	for _, p := range []Party{a, b} {
		e, err := NewEndpoint(Config{Domain: p.Domain, Settings: p.Settings, Faults: p.Faults, Net: n, Timeout: opt.Timeout, PKI: opt.PKI})
		if err != nil {
			return nil, err
		}
		if err := e.Start(); err != nil {
			return nil, err
		}
		eps = append(eps, e)
	}
	results := []*Result{eps[0].Initiate(ctx, b.Domain)}
	if opt.Both {
		results = append(results, eps[1].Initiate(ctx, a.Domain))
	}
	return results, nil
}
