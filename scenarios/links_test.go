package scenarios

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLinkToEscapesEachSegment(t *testing.T) {
	assert.Equal(t, "transcripts/odd%23suite%3Fx__a.txt", LinkTo("transcripts/odd#suite?x__a.txt"))
	assert.Equal(t, "./a:b/c", LinkTo("a:b/c"), "never read as a scheme")
	assert.Equal(t, "", LinkTo(""))
}

// A suite whose name has '#' or '?' links to its transcripts: the
// browser reads the link as the file's name, not as a fragment or a
// query (which broke every link of such a suite).
func TestHTMLLinksReachTheirFiles(t *testing.T) {
	s, err := Parse("odd.yaml", []byte(`suite: "odd#suite?x"
scenarios:
  - {name: "wrong #1", initiator: {domain: a.test}, receiver: {domain: b.test}, expect: tcp-dialback}
`))
	require.NoError(t, err)
	rep, err := Execute(context.Background(), []*Suite{s}, Options{KeepTranscripts: true})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, WriteTranscripts(dir, rep.Negotiations))
	var page bytes.Buffer
	require.NoError(t, WriteHTML(&page, rep))
	links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(page.String(), -1)
	require.NotEmpty(t, links)
	for _, l := range links {
		u, err := url.Parse(l[1])
		require.NoError(t, err)
		assert.Empty(t, u.Fragment, l[1])
		assert.Empty(t, u.RawQuery, l[1])
		_, err = os.Stat(filepath.Join(dir, filepath.FromSlash(u.Path)))
		assert.NoError(t, err, "%s links to a file that exists", l[1])
	}
}
