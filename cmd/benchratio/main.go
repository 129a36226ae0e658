// Command benchratio reads `go test -bench -benchmem` output and prints,
// for each benchmark, the median over its runs of time, bytes and
// allocations per operation, and the ratio of its time to the bare TLS
// handshake measured in the same output (BenchmarkBareTLSHandshake/MODE
// for benchmarks ending in /MODE): the honest way to say how close a
// negotiation is to the TLS floor.
//
//	go test -run '^$' -bench 'BareTLS|Negotiate' -benchmem -count 5 ./sim | go run ./cmd/benchratio
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// line matches "BenchmarkX/y-2   100   12345 ns/op   678 B/op   9 allocs/op".
var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?\s([\d.]+) B/op)?(?:.*?\s([\d.]+) allocs/op)?`)

type runs struct{ ns, bytes, allocs []float64 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func parse(r io.Reader) (map[string]*runs, []string, error) {
	byName := map[string]*runs{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		rs, ok := byName[name]
		if !ok {
			rs = &runs{}
			byName[name] = rs
			order = append(order, name)
		}
		add := func(dst *[]float64, s string) {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				*dst = append(*dst, v)
			}
		}
		add(&rs.ns, m[2])
		add(&rs.bytes, m[3])
		add(&rs.allocs, m[4])
	}
	return byName, order, sc.Err()
}

// baseline is the bare handshake of the same mode as name.
func baseline(name string, byName map[string]*runs) (*runs, string) {
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return nil, ""
	}
	b := "BenchmarkBareTLSHandshake" + name[i:]
	return byName[b], b
}

func main() {
	if err := report(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

// report reads benchmark output from r and writes the table to out.
func report(r io.Reader, out io.Writer) error {
	byName, order, err := parse(r)
	if err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines on standard input")
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "benchmark\truns\tmedian time\tratio to bare TLS\tB/op\t+B/op\tallocs/op\t+allocs\t")
	for _, name := range order {
		rs := byName[name]
		ns, by, al := median(rs.ns), median(rs.bytes), median(rs.allocs)
		ratio, dB, dA := "", "", ""
		if base, bname := baseline(name, byName); base != nil && bname != name {
			ratio = fmt.Sprintf("%.2f×", ns/median(base.ns))
			dB = fmt.Sprintf("%+.0f", by-median(base.bytes))
			dA = fmt.Sprintf("%+.0f", al-median(base.allocs))
		}
		fmt.Fprintf(w, "%s\t%d\t%.3f ms\t%s\t%.0f\t%s\t%.0f\t%s\t\n", strings.TrimPrefix(name, "Benchmark"), len(rs.ns), ns/1e6, ratio, by, dB, al, dA)
	}
	return w.Flush()
}
