//go:build race

package scenarios

// raceEnabled is set in binaries built with -race, where every
// negotiation costs several times the CPU (see DefaultRealJobs).
const raceEnabled = true
