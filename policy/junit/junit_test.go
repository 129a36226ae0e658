package junit

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountsFollowTheCases(t *testing.T) {
	s := &Suite{Name: "s"}
	s.Add(Case{Name: "ok"})
	s.Add(Case{Name: "bad", Failure: &Failure{Message: "m"}})
	s.Add(Case{Name: "broken", Error: &Failure{Message: "e"}})
	s.Add(Case{Name: "cut", Skipped: &Skipped{Message: "interrupted"}})
	assert.Equal(t, [4]int{4, 1, 1, 1}, [4]int{s.Tests, s.Failures, s.Errors, s.Skipped})
	var d Suites
	d.Add(s)
	d.Add(&Suite{Name: "t", Tests: 2, Failures: 1})
	assert.Equal(t, [4]int{6, 2, 1, 1}, [4]int{d.Tests, d.Failures, d.Errors, d.Skipped})
}

func TestSeconds(t *testing.T) {
	assert.Equal(t, "0.002277", Seconds(2277*time.Microsecond+300*time.Nanosecond))
	assert.Equal(t, "1.5", Seconds(1500*time.Millisecond))
	assert.Equal(t, "0", Seconds(0))
}

func TestWriteEscapesAndIndents(t *testing.T) {
	s := &Suite{Name: "probe", Time: "0.1"}
	s.Add(Case{Classname: "probe", Name: "a<b", Time: "0", Failure: &Failure{Message: `"x" & y`, Text: "why"}})
	var b strings.Builder
	require.NoError(t, Write(&b, s))
	assert.Equal(t, `<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="probe" tests="1" failures="1" errors="0" skipped="0" time="0.1">
  <testcase classname="probe" name="a&lt;b" time="0">
    <failure message="&#34;x&#34; &amp; y">why</failure>
  </testcase>
</testsuite>
`, b.String())
}

func ExampleWrite() {
	s := &Suite{Name: "partners", Time: Seconds(1200 * time.Millisecond)}
	s.Add(Case{Classname: "partners", Name: "example.org/gateway-initiates", Time: "0"})
	if err := Write(os.Stdout, s); err != nil {
		fmt.Println(err)
	}
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <testsuite name="partners" tests="1" failures="0" errors="0" skipped="0" time="1.2">
	//   <testcase classname="partners" name="example.org/gateway-initiates" time="0"></testcase>
	// </testsuite>
}
