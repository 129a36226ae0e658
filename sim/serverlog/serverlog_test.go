package serverlog

import (
	"testing"

	"xmppneg/policy/outcome"
)

// Lines as the servers wrote them on loopback (domains shortened).
const (
	prosodyLog = "s2sout55f0c7271040         info\tStream encrypted (TLSv1.3 with TLS_AES_256_GCM_SHA384)\n" +
		"s2sout55f0c7271040         info\tOutgoing s2s connection a.test->b.test complete\n" +
		"s2sin55f0c74d4a90          info\tStream encrypted (TLSv1.3 with TLS_AES_256_GCM_SHA384)\n" +
		"a.test:saslauth            info\tAccepting SASL EXTERNAL identity from b.test\n" +
		"s2sin55f0c74d4a90          info\tIncoming s2s connection b.test->a.test complete\n" +
		"s2sin56018b3c1960          info\tIncoming s2s stream c.test->a.test closed: unsupported-feature (STARTTLS is disabled in local configuration)\n"
	ejabberdLog = "2> 2026-12-02 14:52:54.468370+00:00 [warning] (tls|<0.460.0>) Failed outbound s2s EXTERNAL authentication b.test -> a.test (127.0.0.1): Authentication failed: Peer provided no SASL mechanisms\n" +
		"2> 2026-12-02 14:52:54.475654+00:00 [info] (tls|<0.457.0>) Accepted inbound s2s dialback authentication a.test -> b.test (127.0.0.1)\n" +
		"2> 2026-12-02 14:52:54.535340+00:00 [info] (tls|<0.461.0>) Accepted outbound s2s dialback authentication b.test -> a.test (127.0.0.1)\n" +
		"3> 2026-12-02 14:51:53.118034+00:00 [warning] Failed to establish outbound s2s connection b.test -> c.test: Stream closed by local host: STARTTLS is disabled in local configuration (unsupported-feature); bouncing for 0 seconds\n"
	jabberd2Log = "Wed Dec  2 14:52:49 2026 [notice] [8] [127.0.0.1, port=43964] incoming route 'a.test/b.test' is now valid TLS\n" +
		"Wed Dec  2 14:52:49 2026 [notice] [7] [127.0.0.1, port=24252] outgoing route 'a.test/b.test' is now valid\n" +
		"Wed Dec  2 14:52:49 2026 [notice] [9] [127.0.0.1, port=24252] incoming route 'a.test/c.test' is now invalid\n"
)

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name          string
		kindIn, logIn string
		kindRe, logRe string
		from, to      string
		method        outcome.Method
		failed        bool
		condition     outcome.Condition
	}{
		{"prosody accepts EXTERNAL", "ejabberd", "", "prosody", prosodyLog, "b.test", "a.test", outcome.SASLOverTLS, false, ""},
		{"prosody's own outbound, encrypted", "prosody", prosodyLog, "jabberd2", "", "a.test", "b.test", outcome.TLSDialback, false, ""},
		{"prosody closes with a condition", "ejabberd", "", "prosody", prosodyLog, "c.test", "a.test", 0, true, outcome.UnsupportedFeature},
		{"ejabberd: EXTERNAL refused, dialback accepted", "ejabberd", ejabberdLog, "prosody", "", "b.test", "a.test", outcome.TLSDialback, false, ""},
		{"ejabberd inbound dialback", "prosody", "", "ejabberd", ejabberdLog, "a.test", "b.test", outcome.TLSDialback, false, ""},
		{"ejabberd gives up", "ejabberd", ejabberdLog, "prosody", "", "b.test", "c.test", 0, true, outcome.UnsupportedFeature},
		{"jabberd2 incoming over TLS", "prosody", "", "jabberd2", jabberd2Log, "b.test", "a.test", outcome.TLSDialback, false, ""},
		{"jabberd2 outgoing without TLS", "jabberd2", jabberd2Log, "prosody", "", "a.test", "b.test", outcome.TCPDialback, false, ""},
		{"jabberd2 invalid, whatever the answer", "prosody", "", "jabberd2-2.8", jabberd2Log, "c.test", "a.test", 0, true, ""},
		{"nothing said", "prosody", prosodyLog, "ejabberd", ejabberdLog, "x.test", "y.test", 0, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			domIn, domRe := tc.from, tc.to
			v := Judge(tc.from, tc.to, Parse(tc.kindIn, domIn, tc.logIn), Parse(tc.kindRe, domRe, tc.logRe))
			if v.Method != tc.method || v.Failed != tc.failed || v.Condition != tc.condition {
				t.Errorf("got method %s failed %t condition %q (lines %q); want %s %t %q", v.Method, v.Failed, v.Condition, v.Lines, tc.method, tc.failed, tc.condition)
			}
			if v.Settled() != (tc.method != 0 || tc.failed) {
				t.Errorf("Settled() = %t", v.Settled())
			}
		})
	}
}

func TestUnknownKindHasNoEvents(t *testing.T) {
	if ev := Parse("openfire", "a.test", prosodyLog); ev != nil || Known("openfire") {
		t.Errorf("openfire: %v", ev)
	}
	if !Known("prosody-13") || !Known("ejabberd-24") {
		t.Error("later generations are their family's")
	}
}
