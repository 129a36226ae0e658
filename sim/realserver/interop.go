package realserver

import (
	"context"
	"fmt"
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
func ProsodySettingsSweep() []ProsodySettings {
	var out []ProsodySettings
	for _, enc := range []bool{true, false} {
		for _, db := range []bool{true, false} {
			out = append(out, ProsodySettings{RequireEncryption: enc, Dialback: db, Cert: certs.Valid})
		}
	}
	return append(out, ProsodySettings{RequireEncryption: true, SecureAuth: true, Dialback: true, Cert: certs.Valid})
}

// RunProsodyInterop starts Prosody once per setting and negotiates with a
// harness endpoint of each partner setting in both directions: harness to
// Prosody with the harness initiating, and Prosody to the harness
// triggered through Prosody's admin socket. timeout bounds each
// negotiation.
func RunProsodyInterop(ctx context.Context, settings []ProsodySettings, partners []policy.Settings, timeout time.Duration) ([]InteropOutcome, error) {
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
		const domain = "prosody.test"
		p, err := StartProsody(domain, ss, pki, dns.Addr())
		if err != nil {
			return out, err
		}
		res, err := prosodyRound(ctx, p, si, ss, partners, dns, pki, timeout)
		p.Stop()
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func prosodyRound(ctx context.Context, p *Prosody, si int, ss ProsodySettings, partners []policy.Settings, dns *loopdns.Server, pki *certs.PKI, timeout time.Duration) ([]InteropOutcome, error) {
	var out []InteropOutcome
	n := sim.NewNetwork()
	n.Register(p.Domain, p.Addr())
	for pi, partner := range partners {
		domain := fmt.Sprintf("h%d-%d.test", si, pi)
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
		mk := func(r *sim.Result, serverInit bool) InteropOutcome {
			o := InteropOutcome{Server: "prosody", ServerSettings: ss.String(), Partner: partner, ServerInitiates: serverInit, Result: r}
			if serverInit {
				o.Prediction = policy.Predict(ss.Policy(), partner)
			} else {
				o.Prediction = policy.Predict(partner, ss.Policy())
			}
			o.Agree = o.Result.Outcome == o.Prediction.Outcome
			if o.Agree && o.Observed() != o.Predicted() {
				o.Detail = fmt.Sprintf("both fail, differently: predicted %s, observed %s", o.Predicted(), o.Observed())
			}
			return o
		}

		// Harness → Prosody.
		out = append(out, mk(ep.Initiate(ctx, p.Domain), false))
		// Only fresh streams count: forget what that left open.
		_ = p.CloseAll(ctx)
		drain(inbound)

		// Prosody → harness: a message makes Prosody open its stream.
		cmd := fmt.Sprintf(`>prosody.core_post_stanza(prosody.hosts[%q], require"util.stanza".message({from=%q, to=%q, type="chat"}):text_tag("body", "xmppneg"))`,
			p.Domain, p.Domain, "someone@"+domain)
		var r *sim.Result
		if _, err := p.Shell(ctx, cmd); err != nil {
			r = &sim.Result{Initiator: p.Domain, Receiver: domain, Outcome: sim.Failed,
				Failure: &sim.Failure{Step: sim.StepTCP, Condition: "trigger-failed", By: sim.Initiator, Message: err.Error()}}
		} else {
			t := time.NewTimer(timeout + time.Second)
			select {
			case r = <-inbound:
			case <-t.C:
				r = &sim.Result{Initiator: p.Domain, Receiver: domain, Outcome: sim.Failed,
					Failure: &sim.Failure{Step: sim.StepTCP, Condition: "no-connection", By: sim.Initiator,
						Message: fmt.Sprintf("Prosody did not open a stream to %s within %s", domain, timeout+time.Second)}}
			}
			t.Stop()
		}
		out = append(out, mk(r, true))
		_ = p.CloseAll(ctx)
		ep.Close()
	}
	return out, nil
}

func drain(c chan *sim.Result) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
