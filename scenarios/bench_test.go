package scenarios

import (
	"context"
	"strings"
	"testing"

	"xmppneg/sim/realserver"
)

func benchSuite(b *testing.B, name string) {
	s, err := Load(name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Execute(context.Background(), []*Suite{s}, Options{})
		if err != nil || !rep.Passed() {
			b.Fatalf("%s did not pass", name)
		}
	}
	b.ReportMetric(float64(len(s.Cases)), "negotiations/op")
	b.ReportMetric(float64(len(s.Cases)*b.N)/b.Elapsed().Seconds(), "negotiations/s")
}

// BenchmarkVerifyLync2013 runs the whole lync2013 suite: 648 real
// negotiations and the row comparison.
func BenchmarkVerifyLync2013(b *testing.B) { benchSuite(b, "lync2013") }

// BenchmarkPairwise runs the pairwise suite: 25272 negotiations, every
// certificate state, strict and lenient.
func BenchmarkPairwise(b *testing.B) { benchSuite(b, "pairwise") }

// BenchmarkInteropSuites runs every interop suite together, as make
// interop does: the real servers' time (make bench-interop, one run).
// It reports negotiations a second and how many server processes were
// started; the ratio that matters is to the harness alone
// (BenchmarkProfiles: negotiations between the harness's own endpoints).
func BenchmarkInteropSuites(b *testing.B) {
	if testing.Short() {
		b.Skip("go test -short runs no real server")
	}
	var suites []*Suite
	cases := 0
	for _, name := range Suites() {
		if strings.HasPrefix(name, "interop-") {
			s, err := Load(name)
			if err != nil {
				b.Fatal(err)
			}
			suites = append(suites, s)
			cases += len(s.Cases)
		}
	}
	starts := realserver.Starts()
	for b.Loop() {
		rep, err := Execute(context.Background(), suites, Options{})
		if err != nil || !rep.Passed() {
			b.Fatalf("the interop suites did not pass")
		}
	}
	b.ReportMetric(float64(cases), "negotiations/op")
	b.ReportMetric(float64(cases*b.N)/b.Elapsed().Seconds(), "negotiations/s")
	b.ReportMetric(float64(realserver.Starts()-starts)/float64(b.N), "server-starts/op")
}

// BenchmarkProfiles runs the profiles suite: every shipped profile
// against every other, between the harness's own endpoints; the
// baseline of BenchmarkInteropSuites.
func BenchmarkProfiles(b *testing.B) { benchSuite(b, "profiles") }
