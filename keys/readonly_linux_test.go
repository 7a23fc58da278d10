package keys

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readOnlyDirEnv carries the directory to the copy of the test binary that
// runs TestReadOnlyKeyDirectory inside its own mount namespace.
const readOnlyDirEnv = "KEYS_TEST_READONLY_DIR"

// TestReadOnlyKeyDirectory: a key directory laid out as Kubernetes mounts a
// Secret (files are links into a ..data directory) on a read-only file
// system loads without any write; automatic rotation, the Rotate command
// and an algorithm without a key there are refused with messages that say
// what to do.
//
// Root writes through permissions, so as root the directory is made truly
// read-only: the test runs again in a child process with a mount namespace
// of its own, where the directory is bind-mounted read-only (what a Secret
// volume is). Otherwise, mode 0500 makes it read-only for the test.
func TestReadOnlyKeyDirectory(t *testing.T) {
	if dir := os.Getenv(readOnlyDirEnv); dir != "" {
		// The child, in its own mount namespace (made private by Go).
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bind mount: %v", err)
		}
		if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
		if f, err := os.CreateTemp(dir, "probe"); err == nil {
			f.Close()
			t.Fatal("the read-only mount accepts writes")
		}
		readOnlyChecks(t, dir)
		return
	}

	dir := secretVolume(t)
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		readOnlyChecks(t, dir)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadOnlyKeyDirectory$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), readOnlyDirEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(err.Error(), "operation not permitted") {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot make a mount namespace to test a read-only key directory as root (%v), and CI is set: run the tests as a user other than root, or with CAP_SYS_ADMIN", err)
		}
		t.Skipf("running as root without CAP_SYS_ADMIN: cannot mount a read-only key directory (%v); run as another user to test it", err)
	}
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestReadOnlyKeyDirectory") {
		t.Fatal("the child did not run the test")
	}
}

// secretVolume lays out a directory as Kubernetes mounts a Secret: the
// files live in a timestamped directory, ..data links to it, and each key
// name is a link through ..data. It holds one RSA key.
func secretVolume(t *testing.T) string {
	dir := t.TempDir()
	data := filepath.Join(dir, "..2025_03_01_09_00_00.123456789")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	k := writeTestKey(t, data, 0, time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	if err := os.Chmod(k.file, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(k.file)
	if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readOnlyChecks(t *testing.T, dir string) {
	entries := func() []string {
		var names []string
		filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
			names = append(names, path)
			return err
		})
		return names
	}
	before := entries()

	s, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("LoadOrCreate on a read-only directory holding a key: %v", err)
	}
	if _, err := s.Verify(mustSign(t, s, []byte(`{}`))); err != nil {
		t.Fatal(err)
	}

	clk := newClock()
	o := Options{PublishBeforeUse: pbu, RetainAfterRetire: keep, Now: clk.Now}
	kr, err := NewKeyring(t.Context(), dirSource(t, dir), o)
	if err != nil {
		t.Fatalf("Keyring without rotation on a read-only directory: %v", err)
	}
	if kr.KeyID() != s.KeyID() {
		t.Fatalf("Keyring signs with %s, LoadOrCreate with %s", kr.KeyID(), s.KeyID())
	}
	clk.Add(365 * day) // nothing is due without rotate_every
	if err := kr.Reload(t.Context()); err != nil {
		t.Fatalf("reload a year later: %v", err)
	}

	for name, try := range map[string]struct {
		run  func() error
		want []string
	}{
		"automatic rotation": {func() error {
			_, err := NewKeyring(t.Context(), dirSource(t, dir), rotating(clk, RS256))
			return err
		}, []string{"automatic rotation (rotate_every)", dir, "cannot be written", "set rotate_every to 0"}},
		"Rotate command": {func() error {
			_, err := Rotate(t.Context(), dirSource(t, dir), o)
			return err
		}, []string{"cannot rotate", dir, "cannot be written"}},
		"algorithm without a key": {func() error {
			_, err := NewKeyring(t.Context(), dirSource(t, dir), Options{Algorithms: []string{RS256, ES256}, PublishBeforeUse: pbu})
			return err
		}, []string{"holds no ES256 key and cannot be written", "a P-256 EC key", dir}},
	} {
		err := try.run()
		if err == nil {
			t.Fatalf("%s on a read-only directory: no error", name)
		}
		for _, w := range try.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", name, err, w)
			}
		}
		t.Logf("%s: %v", name, err)
	}
	if after := entries(); !slices.Equal(before, after) {
		t.Fatalf("the directory changed: %v, then %v", before, after)
	}
}
