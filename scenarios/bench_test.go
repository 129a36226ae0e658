package scenarios

import (
	"context"
	"testing"
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
