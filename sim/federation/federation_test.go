package federation

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"xmppneg/certs"
	"xmppneg/policy/outcome"
	"xmppneg/sim/realserver"
)

// TestFederationWithAndWithoutRelay makes the same real servers meet
// twice, through the recording relay and directly, and checks that each
// direction comes to the same outcome: the relay changes nothing the
// servers do. Directly, the outcome is classified from the logs alone,
// which say the method, or a failure with at most its condition; the
// recording's classification must agree with that, and with the logs of
// its own run (the cross-check).
func TestFederationWithAndWithoutRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers: not under -short")
	}
	var servers []Server
	for _, k := range []string{"prosody", "ejabberd", "jabberd2"} {
		if err := realserver.Require(k); err != nil {
			t.Fatal(err)
		}
		kind, err := realserver.LookupKind(k)
		if err != nil {
			t.Fatal(err)
		}
		s, err := kind.Parse(nil)
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, Server{Setting: s, Domain: k + ".test"})
	}
	// Prosody and ejabberd as Debian ships them fail both ways, with
	// conditions the logs name; Prosody and jabberd2 authenticate.
	pairs := [][2]string{{"prosody.test", "ejabberd.test"}, {"jabberd2.test", "prosody.test"}}
	pki, err := certs.New()
	if err != nil {
		t.Fatal(err)
	}
	// Both meshes at once, and their pairs: it is mostly waiting.
	outcomes := func(noRelay bool, out map[string]Direction) error {
		m, err := StartMesh(context.Background(), servers, Options{NoRelay: noRelay, PKI: pki, Timeout: 3 * time.Second})
		if err != nil {
			return err
		}
		defer m.Close()
		var mu sync.Mutex
		var g errgroup
		for _, p := range pairs {
			g.Go(func() error {
				res, err := m.Federate(context.Background(), p[0], p[1])
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				for _, d := range res.Directions {
					out[d.Initiator+" → "+d.Receiver] = d
				}
				return nil
			})
		}
		return g.Wait()
	}
	relayed, direct := map[string]Direction{}, map[string]Direction{}
	var g errgroup
	g.Go(func() error { return outcomes(false, relayed) })
	g.Go(func() error { return outcomes(true, direct) })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for name, r := range relayed {
		d := direct[name]
		if r.CrossCheck != "" {
			t.Errorf("%s: %s", name, r.CrossCheck)
		}
		if !sameAsLogs(r.Observed, d.Observed) {
			t.Errorf("%s: through the relay %s, directly (from the logs) %s\nlogs: %q", name, r.Observed, d.Observed, d.Logs.Lines)
		}
		if !d.Logs.Settled() {
			t.Errorf("%s: the logs said nothing of it without the relay", name)
		}
	}
	if len(relayed) != 4 || len(direct) != 4 {
		t.Errorf("directions: %d with the relay, %d without", len(relayed), len(direct))
	}
}

// sameAsLogs compares a recording's outcome with one from the logs: the
// same method, or both failures with the same condition where the logs
// name one.
func sameAsLogs(rec, logs outcome.Outcome) bool {
	if rec.OK() || logs.OK() {
		return rec.Method == logs.Method
	}
	if logs.Failure == nil || logs.Failure.Condition == "" {
		return true
	}
	return rec.Failure != nil && rec.Failure.Condition == logs.Failure.Condition
}

// errgroup runs functions and joins their errors.
type errgroup struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *errgroup) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	}()
}

func (g *errgroup) Wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}
