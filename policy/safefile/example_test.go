package safefile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"xmppneg/policy/safefile"
)

// A key written where a world-readable file (or a link) was: the result
// is a 0600 file of its own.
func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	key := filepath.Join(dir, "a.example.key")
	_ = os.WriteFile(key, []byte("old"), 0o644)
	if err := safefile.Write(key, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		fmt.Println(err)
	}
	fi, _ := os.Stat(key)
	fmt.Println(fi.Mode().Perm())
	_, err := safefile.Read("/dev/zero", 1<<20, "")
	fmt.Println(err)
	// Output:
	// -rw-------
	// /dev/zero is not a regular file (a character device)
}
