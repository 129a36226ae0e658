package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plant puts a link named name in dir pointing at a file outside it,
// and returns the file, which must stay as it is.
func plant(t *testing.T, dir, name string) string {
	t.Helper()
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("keep"), 0o644))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, name)))
	return victim
}

func assertUntouched(t *testing.T, victim string) {
	t.Helper()
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(got), "written through a link")
}

// A link placed in --out where a report goes is replaced by the report,
// never written through, by every command that writes one.
func TestOutReplacesLinksAtReportNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		args func(dir string) []string
	}{
		{"run", "report.html", func(dir string) []string {
			return []string{"run", "failures", "--run", "secret", "-o", "html", "--out", dir}
		}},
		{"run jsonl", "report.jsonl", func(dir string) []string {
			return []string{"run", "failures", "--run", "secret", "-o", "jsonl", "--out", dir}
		}},
		{"partners", "partners.html", func(dir string) []string {
			// One partner, declared: the fewest negotiations.
			list := filepath.Join(t.TempDir(), "p.txt")
			require.NoError(t, os.WriteFile(list, []byte("Identity : a.example\nTlsNegotiation : Optional\nSaslNegotiation : NotSupported\nSupportDialbackNegotiation : True\n"), 0o644))
			return []string{"partners", list, "--partner", "a.example=gtalk-legacy", "-o", "html", "--out", dir}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			victim := plant(t, dir, tc.file)
			code, _, stderr := runCLI(tc.args(dir)...)
			require.NotEqual(t, exitUsage, code, stderr)
			assertUntouched(t, victim)
			fi, err := os.Lstat(filepath.Join(dir, tc.file))
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular(), "the report replaced the link")
		})
	}

	// merge: the shard's report is read, the merged one written over a
	// link without following it.
	var shards []string
	for _, sh := range []string{"1/2", "2/2"} {
		shard := filepath.Join(t.TempDir(), "shard")
		code, _, stderr := runCLI("run", "failures", "--run", "secret|unreachable", "--shard", sh, "-o", "json", "--out", shard)
		require.Equal(t, exitOK, code, stderr)
		shards = append(shards, shard)
	}
	dir := filepath.Join(t.TempDir(), "merged")
	victim := plant(t, dir, "report.json")
	code, _, stderr := runCLI(append([]string{"merge", "-o", "json", "--out", dir}, shards...)...)
	require.Equal(t, exitOK, code, stderr)
	assertUntouched(t, victim)
}

// A transcripts entry in --out that is a link (to a directory someone
// else chose) is refused before anything runs.
func TestOutRefusesATranscriptsLink(t *testing.T) {
	elsewhere := t.TempDir()
	for _, args := range [][]string{
		{"run", "failures", "--run", "secret"},
		{"partners", examples + "partners.ps1", "--profiles", examples + "partners-servers.yaml"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.Symlink(elsewhere, filepath.Join(dir, "transcripts")))
		code, _, stderr := runCLI(append(args, "--out", dir)...)
		assert.Equal(t, exitUsage, code, args[0])
		assert.Contains(t, stderr, "is a link, not a directory this program made", args[0])
		entries, _ := os.ReadDir(elsewhere)
		assert.Empty(t, entries, "%s wrote where the link points", args[0])
	}
}

// Inputs are regular files of bounded size: /dev/zero used to be read
// until memory ran out, a FIFO hangs a read.
func TestInputsAreBoundedRegularFiles(t *testing.T) {
	for _, args := range [][]string{{"run", "/dev/zero"}, {"partners", "/dev/zero"}} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, exitUsage, code, args)
		assert.Contains(t, stderr, "/dev/zero is not a regular file (a character device)", args)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(big, []byte("suite: big\n"+strings.Repeat("# padding\n", 10<<10)), 0o644))
	code, _, stderr := runCLI("run", big, "--max-input", "64KiB")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, big+" is larger than 64 KiB, the limit (raise it with --max-input)")
	code, _, stderr = runCLI("run", big, "--max-input", "1MiB")
	assert.NotContains(t, stderr, "the limit", "a raised limit reads it")
	_ = code

	list := filepath.Join(t.TempDir(), "partners.txt")
	require.NoError(t, os.WriteFile(list, []byte("Identity : a.example\n"+strings.Repeat("Description : x\n", 1)), 0o644))
	code, _, stderr = runCLI("partners", list, "--max-input", "16B")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "partners.txt is larger than 16 bytes, the limit (raise it with --max-input)")

	fifo := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan string, 1)
	go func() { _, _, stderr := runCLI("partners", fifo); done <- stderr }()
	select {
	case stderr := <-done:
		assert.Contains(t, stderr, "is not a regular file (a FIFO)")
	case <-time.After(10 * time.Second):
		t.Fatal("partners hangs on a FIFO")
	}
}

// --secret-file: a FIFO does not hang, and a secret others can read is
// warned about.
func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() { _, _, err := readSecret(fifo); done <- err }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "not a regular file (a FIFO)")
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO as the secret hangs")
	}
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte(strings.Repeat("ab", 32)+"\n"), 0o644))
	_, warning, err := readSecret(secret)
	require.NoError(t, err)
	assert.Contains(t, warning, "can be read by other users")
	require.NoError(t, os.Chmod(secret, 0o600))
	_, warning, err = readSecret(secret)
	require.NoError(t, err)
	assert.Empty(t, warning)
}

// Domains given on the command line are checked before anything is
// written or run.
func TestDomainFlagsAreChecked(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "pki")
	code, _, stderr := runCLI("certs", "--out", out, "--domain", "a.test", "--domain", "../evil")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `--domain: invalid domain "../evil"`)
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "nothing written")

	code, _, stderr = runCLI("partners", examples+"partners.ps1", "--partner", "../evil=prosody-0.12")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `--partner: invalid domain "../evil"`)

	code, _, stderr = runCLI("partners", examples+"partners.ps1", "--gateway-domain", "contoso test")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `--gateway-domain: invalid domain "contoso test"`)
}

// TEST_SHARD_STATUS_FILE is touched, as the convention says: a file that
// exists keeps what it holds.
func TestShardStatusFileIsTouchedNotTruncated(t *testing.T) {
	status := filepath.Join(t.TempDir(), "status")
	require.NoError(t, os.WriteFile(status, []byte("kept"), 0o644))
	t.Setenv("TEST_TOTAL_SHARDS", "2")
	t.Setenv("TEST_SHARD_INDEX", "0")
	t.Setenv("TEST_SHARD_STATUS_FILE", status)
	_, _, ok, err := shardFromEnv()
	require.NoError(t, err)
	require.True(t, ok)
	got, err := os.ReadFile(status)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(got))
}
