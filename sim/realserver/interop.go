package realserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/sim"
	"xmppneg/sim/loopdns"
)

// InteropOutcome is one negotiation between a harness endpoint and a real
// server, with the oracle's prediction for the server's mapped settings.
type InteropOutcome struct {
	Server          string            `json:"server"`
	ServerSettings  string            `json:"server_settings"`
	Partner         policy.Settings   `json:"partner"`
	ServerInitiates bool              `json:"server_initiates"`
	Result          *sim.Result       `json:"result"`
	Prediction      policy.Prediction `json:"prediction"`
	Agree           bool              `json:"agree"`
	// Detail says how step, condition or side differ when the outcome
	// (method, or failure) agrees but the failure is raised differently.
	Detail string `json:"detail,omitempty"`
	// ServerLog is the end of the server's log, kept when the outcome
	// disagrees with the prediction.
	ServerLog string `json:"server_log,omitempty"`
}

// Observed is the outcome written out.
func (o InteropOutcome) Observed() string { return describe(o.Result.Outcome, o.Result.Failure) }

// Predicted is the prediction written out.
func (o InteropOutcome) Predicted() string {
	if o.Prediction.Outcome == sim.Failed {
		return fmt.Sprintf("failed at %s (%s by %s)", o.Prediction.Step, o.Prediction.Condition, o.Prediction.By)
	}
	return o.Prediction.Outcome
}

func describe(outcome string, f *sim.Failure) string {
	if f == nil {
		return outcome
	}
	return fmt.Sprintf("failed at %s (%s by %s)", f.Step, f.Condition, f.By)
}

// InteropPartners are the harness settings each server setting is
// negotiated with: the document's common settings, the dialback-only
// TLS setting (M13), and a partner without a certificate.
func InteropPartners() []policy.Settings {
	var out []policy.Settings
	for _, r := range policy.Common.Rows {
		out = append(out, policy.Settings{Policy: r.Policy, Cert: certs.Valid, Strict: true})
	}
	m13, _ := policy.Full.Row("M13")
	out = append(out, policy.Settings{Policy: m13.Policy, Cert: certs.Valid, Strict: true})
	out = append(out, policy.Settings{Policy: policy.Policy{TLS: policy.Optional, SASL: policy.Optional, Dialback: true}, Cert: certs.Missing, Strict: true})
	return out
}

// ProsodySettingsSweep is every combination of Prosody's s2s knobs that
// the interop suite runs.
func ProsodySettingsSweep() []Setting {
	var out []Setting
	for _, enc := range []bool{true, false} {
		for _, db := range []bool{true, false} {
			out = append(out, ProsodySettings{RequireEncryption: enc, Dialback: db, Cert: certs.Valid})
		}
	}
	return append(out, ProsodySettings{RequireEncryption: true, SecureAuth: true, Dialback: true, Cert: certs.Valid})
}

// Server is a running real server as the interop runs see it.
type Server interface {
	Addr() string
	// Trigger makes the server open its s2s stream to domain.
	Trigger(ctx context.Context, domain string) error
	Stop() error
	Log() string
}

// Setting is one configuration of a real server.
type Setting interface {
	String() string
	// Policy is the setting in the harness's vocabulary, for the oracle.
	Policy() policy.Settings
}

// Trigger makes Prosody open its stream to domain by sending a message.
func (p *Prosody) Trigger(ctx context.Context, domain string) error {
	cmd := fmt.Sprintf(`>prosody.core_post_stanza(prosody.hosts[%q], require"util.stanza".message({from=%q, to=%q, type="chat"}):text_tag("body", "xmppneg"))`,
		p.Domain, p.Domain, "someone@"+domain)
	_, err := p.Shell(ctx, cmd)
	return err
}

// Trigger makes ejabberd open its stream to domain by sending a message.
func (x *Ejabberd) Trigger(_ context.Context, domain string) error {
	return x.Send("someone@" + domain)
}

// RunInterop starts the server ("prosody" or "ejabberd") once per setting
// and negotiates with harness endpoints of each partner setting in both
// directions: harness to server with the harness initiating, and server
// to harness triggered by making the server send a message. Each
// direction uses an endpoint of its own, so that no stream left open by
// the other direction is reused. timeout bounds each negotiation.
func RunInterop(ctx context.Context, server string, settings []Setting, partners []policy.Settings, timeout time.Duration) ([]InteropOutcome, error) {
	if err := Require(server); err != nil {
		return nil, err
	}
	pki, err := certs.Default()
	if err != nil {
		return nil, err
	}
	dns, err := loopdns.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer dns.Close()
	var out []InteropOutcome
	for si, ss := range settings {
		domain := server + ".test"
		var srv Server
		switch v := ss.(type) {
		case ProsodySettings:
			srv, err = StartProsody(domain, v, pki, dns.Addr())
		case EjabberdSettings:
			srv, err = StartEjabberd(domain, v, pki, dns.Addr())
		default:
			err = fmt.Errorf("realserver: no launcher for %T", ss)
		}
		if err != nil {
			return out, err
		}
		res, err := interopRound(ctx, server, domain, srv, si, ss, partners, dns, pki, timeout)
		srv.Stop()
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func interopRound(ctx context.Context, server, srvDomain string, srv Server, si int, ss Setting, partners []policy.Settings, dns *loopdns.Server, pki *certs.PKI, timeout time.Duration) ([]InteropOutcome, error) {
	var out []InteropOutcome
	n := sim.NewNetwork()
	n.Register(srvDomain, srv.Addr())
	for pi, partner := range partners {
		for _, serverInit := range []bool{false, true} {
			domain := fmt.Sprintf("h%d-%d-%s.test", si, pi, map[bool]string{false: "in", true: "out"}[serverInit])
			ep, err := sim.NewEndpoint(sim.Config{Domain: domain, Settings: partner, Net: n, PKI: pki, RecordReads: true, Timeout: timeout})
			if err != nil {
				return out, err
			}
			inbound := make(chan *sim.Result, 4)
			ep.OnInbound(func(r *sim.Result) {
				select {
				case inbound <- r:
				default:
				}
			})
			if err := ep.Start(); err != nil {
				return out, err
			}
			if err := dns.Set(domain, ep.Addr()); err != nil {
				ep.Close()
				return out, err
			}
			var r *sim.Result
			if !serverInit {
				r = ep.Initiate(ctx, srvDomain)
			} else {
				r = awaitInbound(ctx, srv, srvDomain, domain, inbound, timeout)
			}
			o := InteropOutcome{Server: server, ServerSettings: ss.String(), Partner: partner, ServerInitiates: serverInit, Result: r}
			if serverInit {
				o.Prediction = policy.Predict(ss.Policy(), partner)
			} else {
				o.Prediction = policy.Predict(partner, ss.Policy())
			}
			o.Agree = o.Result.Outcome == o.Prediction.Outcome
			if !o.Agree {
				o.ServerLog = tail(srv.Log(), 60)
			}
			if o.Agree && o.Observed() != o.Predicted() {
				o.Detail = fmt.Sprintf("both fail, differently: predicted %s, observed %s", o.Predicted(), o.Observed())
			}
			out = append(out, o)
			ep.Close()
		}
	}
	return out, nil
}

// awaitInbound makes the server open its stream to domain and returns
// the harness's view of that negotiation.
func awaitInbound(ctx context.Context, srv Server, srvDomain, domain string, inbound chan *sim.Result, timeout time.Duration) *sim.Result {
	fail := func(cond, msg string) *sim.Result {
		return &sim.Result{Initiator: srvDomain, Receiver: domain, Outcome: sim.Failed,
			Failure: &sim.Failure{Step: sim.StepTCP, Condition: cond, By: sim.Initiator, Message: msg}}
	}
	if err := srv.Trigger(ctx, domain); err != nil {
		return fail("trigger-failed", err.Error())
	}
	t := time.NewTimer(timeout + time.Second)
	defer t.Stop()
	select {
	case r := <-inbound:
		return r
	case <-t.C:
		return fail("no-connection", fmt.Sprintf("the server did not open a stream to %s within %s", domain, timeout+time.Second))
	}
}

// EjabberdSettingsSweep is every combination of ejabberd's s2s knobs that
// the interop suite runs.
func EjabberdSettingsSweep() []Setting {
	var out []Setting
	for _, tls := range []string{"false", "optional", "required"} {
		for _, db := range []bool{true, false} {
			out = append(out, EjabberdSettings{StartTLS: tls, Dialback: db, Cert: certs.Valid})
		}
	}
	return out
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
