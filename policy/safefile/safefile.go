// Package safefile reads and writes the files of a run in places others
// may have prepared: an output directory holding a link where a report
// goes, a private key that exists world-readable, an input that is a
// FIFO or /dev/zero.
//
// Writes never go through what is at the destination: the data goes to
// a fresh file in the same directory (O_CREAT|O_EXCL, which refuses a
// link), gets its mode (umask apart: a key is 0600 whatever existed
// before), and is renamed over the destination, which replaces a link
// rather than following it. Reads take regular files only, up to a
// limit.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes data to path with mode, replacing what is there (a link
// included) and following no link.
func Write(path string, data []byte, mode fs.FileMode) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// File is a file being written: nothing is at its path until Commit.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts writing path with mode, as Write does, for writers that
// stream.
//
// Not github.com/google/renameio, which does the same: it syncs every
// file before the rename (5.6 ms a file here against 1.7 ms, thousands
// of transcripts a run), and its WriteFile keeps the mode of the file
// it replaces, so that a key that existed 0644 would stay readable.
// Reports and transcripts are made again by running again; a crash
// leaves the old file or the new one, never one written through a link.
func Create(path string, mode fs.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// O_CREAT|O_EXCL (os.CreateTemp): a link at the fresh name is an
	// error, never followed.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	// The mode as asked, whatever the umask (a key 0600, a report
	// 0644).
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &File{File: f, path: path}, nil
}

// Commit puts what was written at the file's path: a rename, which
// replaces a link there rather than following it.
func (f *File) Commit() error {
	if f.done {
		return nil
	}
	f.done = true
	if err := f.File.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	return nil
}

// Discard removes what was written, if it was not committed.
func (f *File) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}

// Dir makes parent/name a directory for our files and returns its path
// (parent is made if needed):
// created with mode, or one that exists, is a directory (not a link to
// one) and belongs to this user. Anything else there is refused: a link
// someone placed would send the files elsewhere.
func Dir(parent, name string, mode fs.FileMode) (string, error) {
	// parent is the user's to choose (--out): made if needed, and
	// taken as it is.
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", parent, err)
	}
	dir := filepath.Join(parent, name)
	err := os.Mkdir(dir, mode)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		if err != nil {
			return "", fmt.Errorf("creating %s: %w", dir, err)
		}
		return dir, nil
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("%s is a link, not a directory this program made: remove it", dir)
	case !fi.IsDir():
		return "", fmt.Errorf("%s is not a directory: remove it", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return "", fmt.Errorf("%s belongs to another user (uid %d), not to this program's: remove it", dir, st.Uid)
	}
	return dir, nil
}

// TooLargeError is an input longer than its limit.
type TooLargeError struct {
	Path  string
	Limit int64
	// Flag, when set, is the option that raises the limit.
	Flag string
}

func (e *TooLargeError) Error() string {
	s := fmt.Sprintf("%s is larger than %s, the limit", e.Path, Size(e.Limit))
	if e.Flag != "" {
		s += " (raise it with " + e.Flag + ")"
	}
	return s
}

// Size writes n bytes as the limits table does: "16 MiB".
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Read reads path, which must be a regular file (a FIFO would hang the
// read, a device such as /dev/zero never ends), of at most limit bytes;
// a longer one is a *TooLargeError naming it and flag.
func Read(path string, limit int64, flag string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO to read would wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, kind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit, Flag: flag}
	}
	// The size can change under us: read one byte past the limit.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit, Flag: flag}
	}
	return data, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// OthersCanRead reports whether path's mode lets users other than its
// owner read it: a secret or key should not.
func OthersCanRead(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return fi.Mode().Perm()&0o044 != 0, nil
}
