package partners

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"xmppneg/certs"
	"xmppneg/policy"
	"xmppneg/policy/lyncpartner"
	"xmppneg/sim/realserver"
)

// TestMain checks for leaked goroutines; under -short (the hermetic
// loop) it keeps real servers from starting at all.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Setenv(realserver.NoRealServersEnv, "1")
	}
	goleak.VerifyTestMain(m)
}

func example(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", name))
	require.NoError(t, err)
	return data
}

// exampleOptions: the servers the example partners run, and a gateway
// whose certificate is what a public CA issues since 2026. Errors
// panic: the files are the project's own.
func exampleOptions(testing.TB) Options {
	data, err := os.ReadFile(filepath.Join("..", "examples", "partners-servers.yaml"))
	if err != nil {
		panic(err)
	}
	decl, err := ParseDeclaredFile("partners-servers.yaml", data)
	if err != nil {
		panic(err)
	}
	base, err := policy.LookupProfile("lync2013-gateway")
	if err != nil {
		panic(err)
	}
	gw, err := policy.ParseSpecFrom(base.Settings, "cert=no-client-auth")
	if err != nil {
		panic(err)
	}
	return Options{Declared: decl, Gateway: &gw}
}

func evaluate(t testing.TB, list []byte, opt Options) *Report {
	t.Helper()
	entries, notes, err := lyncpartner.Parse("partners.ps1", list)
	require.NoError(t, err)
	rep, err := Evaluate(context.Background(), entries, notes, opt)
	require.NoError(t, err)
	return rep
}

// exampleReport is the example inventory's report, evaluated once for
// the tests that read it.
var exampleReport = sync.OnceValues(func() (*Report, error) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "partners.ps1"))
	if err != nil {
		return nil, err
	}
	entries, notes, err := lyncpartner.Parse("partners.ps1", data)
	if err != nil {
		return nil, err
	}
	return Evaluate(context.Background(), entries, notes, exampleOptions(nil))
})

func exampleRep(t testing.TB) *Report {
	t.Helper()
	rep, err := exampleReport()
	require.NoError(t, err)
	return rep
}

func byDomain(r *Report) map[string]*Partner {
	m := map[string]*Partner{}
	for _, p := range r.Partners {
		m[p.Entry.Domain] = p
	}
	return m
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// The example inventory, partner by partner: what works, what blocks
// the others (every blocker), and where the fix is.
func TestExampleInventory(t *testing.T) {
	t.Parallel()
	rep := exampleRep(t)
	p := byDomain(rep)
	require.Len(t, p, 6)

	assert.Equal(t, Works, p["gtalk.example"].Status)
	assert.Nil(t, p["gtalk.example"].Fix)

	// Left on the defaults (M1): dialback does not operate, and jabberd2
	// has nothing else.
	j := p["jabberd2.example"]
	assert.Equal(t, Fails, j.Status)
	assert.Contains(t, codes(j.Warnings), "dialback-disabled")
	assert.Contains(t, codes(j.Blockers), "no-common-method")
	require.NotNil(t, j.Fix)
	assert.Equal(t, "Set-CsXmppAllowedPartner -Identity jabberd2.example -SaslNegotiation Optional", j.Fix.Cmdlet,
		"one change, and TLS stays Required")
	assert.Equal(t, []string{"SaslNegotiation"}, j.Fix.Lowers, "jabberd2 has no EXTERNAL: nothing that keeps SASL Required authenticates")
	assert.Contains(t, j.Fix.Why, "it lowers -SaslNegotiation from Required to Optional, because no setting that keeps them authenticates with this partner (jabberd2-2.7) both ways")

	l := p["legacy.example"]
	assert.False(t, l.Valid)
	assert.Equal(t, "invalid-configuration", l.Blockers[0].Code)
	require.NotNil(t, l.Fix)
	assert.Equal(t, "gateway", l.Fix.Where)

	// A self-signed partner: no gateway setting helps; its certificate
	// does.
	pr := p["prosody.example"]
	assert.Equal(t, Fails, pr.Status)
	assert.Equal(t, []string{"partner-certificate", "certificate-refused"}, codes(pr.Blockers)[:2])
	require.NotNil(t, pr.Fix)
	assert.Equal(t, "certificate", pr.Fix.Where)
	assert.Empty(t, pr.Fix.Cmdlet)

	// ejabberd 23 refuses EXTERNAL from a serverAuth-only certificate:
	// two blockers. Dialback would do, but only by lowering SASL from
	// Required, which a certificate with clientAuth does not need: the
	// fix is the certificate, and the lowering is only mentioned.
	ej := p["ejabberd.example"]
	assert.Equal(t, []string{"gateway-certificate", "external-refused"}, codes(ej.Blockers))
	assert.Contains(t, ej.Blockers[1].Message, "unsupported certificate purpose")
	require.NotNil(t, ej.Fix)
	assert.Equal(t, "certificate", ej.Fix.Where)
	assert.Empty(t, ej.Fix.Cmdlet)
	assert.Empty(t, ej.Fix.Lowers)
	assert.Contains(t, ej.Fix.Why, "replace the gateway's certificate (no-client-auth) with a valid one")
	assert.Contains(t, ej.Fix.Why, "keeping the certificates, Set-CsXmppAllowedPartner -Identity ejabberd.example -SaslNegotiation Optional -SupportDialbackNegotiation $true works too")

	u := p["unknown.example"]
	assert.Equal(t, Unknown, u.Status)
	assert.Len(t, u.Candidates, len(Candidates()))
	assert.Contains(t, codes(u.Blockers), "unknown-partner")
	assert.Nil(t, u.Fix, "nothing was seen to fail")
}

// No fix on guesswork: for partners nobody declared or probed the
// report proposes no change (it used to weaken Google Talk's entry to
// TLS Optional / SASL Required, and a valid M7 entry to TLS Optional),
// says what is unknown and how to learn it, and lists the candidate
// servers the entry works with. For a declared partner that works, no
// change either.
func TestNoFixOnGuesswork(t *testing.T) {
	t.Parallel()
	list := []byte("New-CsXmppAllowedPartner -Identity gtalk.example -TlsNegotiation NotSupported -SaslNegotiation NotSupported -SupportDialbackNegotiation $true\n" +
		"New-CsXmppAllowedPartner -Identity m7.example -TlsNegotiation Required -SaslNegotiation Optional -SupportDialbackNegotiation $true\n" +
		"New-CsXmppAllowedPartner -Identity prosody.example -TlsNegotiation Required -SaslNegotiation Optional -SupportDialbackNegotiation $true\n")
	decl, err := ParseDeclared("prosody-0.12")
	require.NoError(t, err)
	rep := evaluate(t, list, Options{Declared: map[string]Declared{"prosody.example": decl}})
	p := byDomain(rep)
	for _, d := range []string{"gtalk.example", "m7.example"} {
		u := p[d]
		assert.Equal(t, Unknown, u.Status, d)
		assert.Nil(t, u.Fix, d)
		require.NotEmpty(t, u.Blockers, d)
		assert.Contains(t, u.Blockers[0].Message, "xmppneg partners FILE --probe", d)
		assert.Contains(t, u.Blockers[0].Message, "--partner "+d+"=PROFILE|SPEC", d)
		assert.NotEmpty(t, u.Candidates, d)
	}
	assert.Equal(t, 10, p["gtalk.example"].CandidatesBothWays) // ejabberd-23 and -24 among them
	assert.Equal(t, Works, p["prosody.example"].Status)
	assert.Nil(t, p["prosody.example"].Fix)
	var b bytes.Buffer
	WriteText(&b, rep, Style{})
	assert.NotContains(t, b.String(), "Set-CsXmppAllowedPartner", "no cmdlet anywhere")
	assert.Equal(t, 0, rep.Summary.Fixes)
}

// A fix never lowers TLS or SASL from Required while a setting that
// keeps them authenticates with the partner: checked against every
// gateway setting for each fix of a sweep of entries and servers.
func TestFixesLowerNothingUnlessNothingElseWorks(t *testing.T) {
	t.Parallel()
	var lines []string
	decl := map[string]Declared{}
	i := 0
	for _, prof := range []string{"jabberd2-2.7", "ejabberd-23-example", "prosody-0.12", "gtalk-legacy", "lync2013-gateway"} {
		for _, r := range policy.Full.Rows {
			if r.Policy.TLS != policy.Required && r.Policy.SASL != policy.Required {
				continue
			}
			d := fmt.Sprintf("p%02d.example", i)
			i++
			lines = append(lines, fmt.Sprintf("New-CsXmppAllowedPartner -Identity %s -TlsNegotiation %s -SaslNegotiation %s -SupportDialbackNegotiation $%t", d, r.Policy.TLS, r.Policy.SASL, r.Policy.Dialback))
			dd, err := ParseDeclared(prof)
			require.NoError(t, err)
			decl[d] = dd
		}
	}
	rep := evaluate(t, []byte(strings.Join(lines, "\n")), Options{Declared: decl})
	// For each fix that lowers, every setting that keeps TLS and SASL
	// Required, negotiated with the same partner: none may work.
	var again []string
	againDecl := map[string]Declared{}
	lowered := 0
	for _, p := range rep.Partners {
		if p.Fix == nil || len(p.Fix.Lowers) == 0 {
			continue
		}
		lowered++
		assert.Contains(t, p.Fix.Why, "it lowers -", p.Entry.Domain)
		for _, gp := range fixable() {
			if len(lowers(p.Entry.Policy, gp)) > 0 {
				continue
			}
			d := fmt.Sprintf("q%03d.example", len(again))
			again = append(again, fmt.Sprintf("New-CsXmppAllowedPartner -Identity %s -TlsNegotiation %s -SaslNegotiation %s -SupportDialbackNegotiation $%t", d, gp.TLS, gp.SASL, gp.Dialback))
			againDecl[d] = decl[p.Entry.Domain]
		}
	}
	for _, p := range evaluate(t, []byte(strings.Join(again, "\n")), Options{Declared: againDecl}).Partners {
		assert.Equal(t, Fails, p.Status, "%s with %s: a setting that keeps Required works, yet the fix lowered", p.Runs, p.Entry.Policy.Partner())
	}
	assert.Positive(t, lowered, "some entries can only be fixed by lowering")
}

// Every fix the report prints, applied, authenticates in both
// directions: the Set- line appended to the list and the list read
// again, or the certificate replaced, or the partner's settings changed.
func TestEveryFixAppliedWorks(t *testing.T) {
	t.Parallel()
	opt := exampleOptions(t)
	rep := exampleRep(t)
	fixed := 0
	for _, p := range rep.Partners {
		if p.Fix == nil {
			continue
		}
		t.Run(p.Entry.Domain, func(t *testing.T) {
			o := opt
			o.Declared = map[string]Declared{}
			for k, v := range opt.Declared {
				o.Declared[k] = v
			}
			// The partner's entry alone, as the list would have it, and
			// the fix on top.
			list := []byte(lyncpartner.NewCmdlet(p.Entry))
			l := list
			switch p.Fix.Where {
			case "gateway":
				l = append(append(append([]byte{}, list...), '\n'), p.Fix.Cmdlet...)
			case "certificate":
				if d, ok := o.Declared[p.Entry.Domain]; ok && d.Settings.Cert != certs.Valid && !strings.Contains(p.Fix.Why, "the gateway's certificate") {
					d.Settings.Cert = certs.Valid
					o.Declared[p.Entry.Domain] = d
				}
				if strings.Contains(p.Fix.Why, "the gateway's certificate") || strings.Contains(p.Fix.Why, "both certificates") {
					gw := *o.Gateway
					gw.Cert = certs.Valid
					o.Gateway = &gw
				}
				if p.Fix.Cmdlet != "" {
					l = append(append(append([]byte{}, list...), '\n'), p.Fix.Cmdlet...)
				}
			case "partner":
				d := o.Declared[p.Entry.Domain]
				d.Settings.Policy = p.Fix.Settings
				o.Declared[p.Entry.Domain] = d
			}
			after := byDomain(evaluate(t, l, o))[p.Entry.Domain]
			if p.Status == Unknown {
				assert.Equal(t, p.Fix.Works, fmt.Sprintf("%d of %d", after.CandidatesBothWays, len(after.Candidates)))
				return
			}
			require.Len(t, after.Negotiations, 2)
			for _, n := range after.Negotiations {
				assert.True(t, n.Outcome.OK(), "%s after %s: %s", n.Direction, p.Fix.Why, n.Explanation)
			}
			assert.Equal(t, Works, after.Status, "and nothing better is left to propose")
		})
		fixed++
	}
	assert.GreaterOrEqual(t, fixed, 4, "the example needs fixes of every kind")
}

// One list in four formats is one report.
func TestFourFormatsGiveIdenticalJSON(t *testing.T) {
	t.Parallel()
	opt := exampleOptions(t)
	var first bytes.Buffer
	require.NoError(t, WriteJSON(&first, exampleRep(t)))
	for _, name := range []string{"partners.txt", "partners.csv", "partners.json"} {
		entries, notes, err := lyncpartner.Parse(name, example(t, name))
		require.NoError(t, err)
		rep, err := Evaluate(context.Background(), entries, notes, opt)
		require.NoError(t, err)
		var b bytes.Buffer
		require.NoError(t, WriteJSON(&b, rep))
		assert.Equal(t, first.String(), b.String(), "%s and partners.ps1", name)
	}
}

func TestWritersSayTheSame(t *testing.T) {
	rep := exampleRep(t)
	var txt, ko, junit, html bytes.Buffer
	WriteText(&txt, rep, Style{})
	WriteText(&ko, rep, Style{Lang: Korean})
	require.NoError(t, WriteJUnit(&junit, rep))
	require.NoError(t, WriteHTML(&html, rep, English))
	assert.Contains(t, txt.String(), "Set-CsXmppAllowedPartner -Identity jabberd2.example -SaslNegotiation Optional")
	assert.Contains(t, ko.String(), "필수/필수/True", "the document's Korean levels")
	assert.Contains(t, ko.String(), "유효하지 않은 구성")
	assert.Contains(t, junit.String(), `tests="6" failures="5"`, "a case per partner; failures are the partners that fail or are unknown, as the summary counts them")
	assert.Equal(t, 5, rep.Summary.Failing)
	assert.False(t, rep.Summary.OK)
	assert.Contains(t, html.String(), `<tbody class="fails">`)
	assert.Equal(t, 6, strings.Count(html.String(), "<tbody class="), "a row per partner")
}

// The HTML is read at a glance: the documented warnings are there, as in
// the text; a cmdlet is one copyable line whose parameters never break
// at their hyphens; in Korean the verdict stays one word, the document's
// warnings are in its words, and what the negotiations wrote in English
// is marked so.
func TestHTMLReadsAtAGlance(t *testing.T) {
	rep := exampleRep(t)
	var en, ko bytes.Buffer
	require.NoError(t, WriteHTML(&en, rep, English))
	require.NoError(t, WriteHTML(&ko, rep, Korean))
	page := en.String()
	assert.Contains(t, page, "[dialback-disabled]</span> Dialback does not work when SASL and TLS are both required.", "the documented warnings, as the text has them")
	assert.Contains(t, page, `data-cmd="Set-CsXmppAllowedPartner -Identity jabberd2.example -SaslNegotiation Optional"`, "one click copies the line")
	assert.Contains(t, page, `<code><span>Set-CsXmppAllowedPartner</span> <span>-Identity jabberd2.example</span> <span>-SaslNegotiation Optional</span></code>`,
		"each parameter with its value is one unbreakable piece")
	assert.Contains(t, page, ".cmd code span{white-space:nowrap}")
	assert.Contains(t, page, "user-select:all")
	assert.Contains(t, page, "table-layout:fixed", "the columns fit the window")

	kp := ko.String()
	assert.Contains(t, kp, `<html lang="ko">`)
	assert.Contains(t, kp, ":lang(ko){word-break:keep-all", "Korean words do not break a syllable a line")
	assert.Contains(t, kp, ".verdict{font-weight:700;white-space:nowrap}")
	assert.Contains(t, kp, `<div class="verdict">알 수 없음</div>`)
	assert.Contains(t, kp, "SASL 및 TLS가 필수인 경우 Dialback이 작동되지 않습니다.", "the document's own Korean warning")
	assert.Contains(t, kp, `<span class="en" lang="en">gateway-initiates: no common authentication method`, "English marked as English")
	assert.Contains(t, kp, "협상과 진단이 기록한 영어 원문")
	assert.Contains(t, kp, "실패: dialback")
	assert.NotContains(t, kp, ">failed at ")
}

func BenchmarkPartners(b *testing.B) {
	// 50 partners over all 18 settings: 25 whose servers are declared
	// (the shipped profiles in turn), for which every gateway setting is
	// searched for a fix, and 25 nobody declared, each tried against
	// every candidate both ways.
	var lines []string
	decl := map[string]Declared{}
	profiles := policy.Profiles()
	for i := 0; i < 50; i++ {
		p := policy.All()[i%18]
		d := fmt.Sprintf("p%02d.example", i)
		lines = append(lines, fmt.Sprintf("New-CsXmppAllowedPartner -Identity %s -TlsNegotiation %s -SaslNegotiation %s -SupportDialbackNegotiation $%t", d, p.TLS, p.SASL, p.Dialback))
		if i%2 == 0 {
			decl[d] = Declared{Label: profiles[i%len(profiles)].Name, Settings: profiles[i%len(profiles)].Settings}
		}
	}
	list := []byte(strings.Join(lines, "\n"))
	for i := 0; i < b.N; i++ {
		rep := evaluate(b, list, Options{Declared: decl})
		b.ReportMetric(float64(rep.Summary.Negotiations), "negotiations/op")
	}
}
