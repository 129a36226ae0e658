package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A link placed where a file goes is replaced, and what it points to is
// left alone.
func TestWriteReplacesALinkWithoutFollowingIt(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("keep"), 0o644))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "report.html")))
	require.NoError(t, Write(filepath.Join(dir, "report.html"), []byte("report"), 0o644))
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(got), "the link's target is untouched")
	fi, err := os.Lstat(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the link was replaced by the file")

	f, err := Create(filepath.Join(dir, "stream.json"), 0o644)
	require.NoError(t, err)
	_, err = f.Write([]byte("{}"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "stream.json"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "nothing is at the path before Commit")
	require.NoError(t, f.Commit())
	got, err = os.ReadFile(filepath.Join(dir, "stream.json"))
	require.NoError(t, err)
	assert.Equal(t, "{}", string(got))
}

// A key is 0600 even when the file existed readable by everyone.
func TestModeIsSetWhateverExisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.key")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, Write(path, []byte("secret"), 0o600))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	others, err := OthersCanRead(path)
	require.NoError(t, err)
	assert.False(t, others)
}

func TestDirRefusesALink(t *testing.T) {
	out, elsewhere := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(out, "transcripts")))
	_, err := Dir(out, "transcripts", 0o755)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a link")

	require.NoError(t, os.WriteFile(filepath.Join(out, "file"), nil, 0o644))
	_, err = Dir(out, "file", 0o755)
	assert.ErrorContains(t, err, "not a directory")

	d, err := Dir(out, "mine", 0o755)
	require.NoError(t, err)
	d2, err := Dir(out, "mine", 0o755)
	require.NoError(t, err, "a directory made before is ours")
	assert.Equal(t, d, d2)
}

// Inputs are regular files of bounded size: a FIFO does not hang the
// read, /dev/zero does not run the memory out.
func TestReadTakesBoundedRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() { _, err := Read(fifo, 1<<20, ""); done <- err }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "is not a regular file (a FIFO)")
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO hangs")
	}

	_, err := Read("/dev/zero", 1<<20, "")
	assert.ErrorContains(t, err, "/dev/zero is not a regular file (a character device)")
	_, err = Read(dir, 1<<20, "")
	assert.ErrorContains(t, err, "a directory")

	big := filepath.Join(dir, "big.yaml")
	require.NoError(t, os.WriteFile(big, make([]byte, 2<<10), 0o644))
	_, err = Read(big, 1<<10, "--max-input")
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	assert.EqualError(t, err, big+" is larger than 1 KiB, the limit (raise it with --max-input)")
	data, err := Read(big, 2<<10, "")
	require.NoError(t, err)
	assert.Len(t, data, 2<<10)
}
