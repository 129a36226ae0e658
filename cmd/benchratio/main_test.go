package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReportTakesMediansAndDividesBySameModeBaseline(t *testing.T) {
	in := `goos: linux
BenchmarkBareTLSHandshake/serial-2   	 100	 2000000 ns/op	 1000 B/op	 10 allocs/op
BenchmarkBareTLSHandshake/serial-2   	 100	 9000000 ns/op	 1000 B/op	 10 allocs/op
BenchmarkBareTLSHandshake/serial-2   	 100	 1000000 ns/op	 1000 B/op	 10 allocs/op
BenchmarkBareTLSHandshake/parallel-2 	 100	 1000000 ns/op	 1000 B/op	 10 allocs/op
BenchmarkNegotiate/sasl/serial-2     	 100	 3000000 ns/op	 1500 B/op	 15 allocs/op
BenchmarkNegotiate/sasl/parallel-2   	 100	 1500000 ns/op	 1400 B/op	 14 allocs/op
BenchmarkPairwise-2 	 3	 20000000000 ns/op	 25272 negotiations/op	 1263 negotiations/s	 99 B/op	 7 allocs/op
PASS
`
	var out strings.Builder
	require.NoError(t, report(strings.NewReader(in), &out))
	lines := strings.Split(out.String(), "\n")
	row := func(name string) []string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return f
			}
		}
		t.Fatalf("no row %s in\n%s", name, out.String())
		return nil
	}
	// Median of 2, 9, 1 ms is 2 ms: an outlier does not move it.
	assert.Equal(t, []string{"BareTLSHandshake/serial", "3", "2.000", "ms", "1000", "10"}, row("BareTLSHandshake/serial"))
	assert.Equal(t, []string{"Negotiate/sasl/serial", "1", "3.000", "ms", "1.50×", "1500", "+500", "15", "+5"}, row("Negotiate/sasl/serial"))
	assert.Equal(t, []string{"Negotiate/sasl/parallel", "1", "1.500", "ms", "1.50×", "1400", "+400", "14", "+4"}, row("Negotiate/sasl/parallel"))
	assert.Equal(t, []string{"Pairwise", "1", "20000.000", "ms", "99", "7"}, row("Pairwise"))
}

func TestReportWithoutBenchmarksIsAnError(t *testing.T) {
	assert.Error(t, report(strings.NewReader("PASS\nok x 1s\n"), &strings.Builder{}))
}
