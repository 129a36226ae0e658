package policy

import "strings"

// Closest returns the name in names nearest to s, if one is near enough
// to be a likely misspelling, for errors that say "did you mean …?".
func Closest(s string, names []string) string {
	best, dist := "", len(s)/2+2
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < dist {
			best, dist = n, d
		}
	}
	return best
}

// editDistance is the number of insertions, deletions, substitutions
// and swaps of two neighbours that turn a into b (optimal string
// alignment): "tsl" is one swap from "tls".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
