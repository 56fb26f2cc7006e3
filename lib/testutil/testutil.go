// Package testutil holds what the end-to-end tests share: where the built
// binaries and the default rootfs are, running a command with a deadline,
// and the root rule (a test that needs root fails under CI=true instead of
// skipping).
package testutil

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips t when not running as root, except in CI (CI=true),
// where a root test that cannot run is a failure.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI=true")
	}
	t.Skip("needs root")
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Bin is the path of a built binary in bin/; the test fails if it is not
// built (run `make`).
func Bin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built (run make): %v", p, err)
	}
	return p
}

// Rootfs is the default busybox root filesystem (run `make rootfs`).
func Rootfs(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "build", "rootfs")
	if _, err := os.Stat(filepath.Join(p, ".barco-rootfs")); err != nil {
		t.Fatalf("%s is not built (run make rootfs): %v", p, err)
	}
	return p
}

// DebianRootfs is the Debian root filesystem (run `make debian`).
func DebianRootfs(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "build", "debian")
	if _, err := os.Stat(filepath.Join(p, ".barco-rootfs")); err != nil {
		t.Fatalf("%s is not built (run make debian): %v", p, err)
	}
	return p
}

// Result is what a finished command left.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status; 128+N for a signal, -1 if it never ran
}

// Timeout is how long Run lets a command run.
const Timeout = 60 * time.Second

// Run runs argv with env added to the test's environment and returns its
// output and status. Stdin is empty.
func Run(t testing.TB, env []string, argv ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: StatusOf(err)}
	if ctx.Err() != nil {
		t.Fatalf("%q timed out after %v; stderr: %s", argv, Timeout, r.Stderr)
	}
	return r
}

// StatusOf turns the error of exec.Cmd.Run or Wait into an exit status.
func StatusOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// Lines splits output into trimmed non-empty lines.
func Lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// SearchableTempDir is t.TempDir with itself and its parent searchable by
// all (Go makes them 0700), so that a container root that is not the
// host's root (uid 100000 in a user namespace) can reach it.
func SearchableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// CopyRootfs copies the default rootfs into a SearchableTempDir and, unless
// owner is 0, gives it to host uid and gid owner, as the rootfs of a user
// namespace whose root is owner. It returns the copy's path.
func CopyRootfs(t testing.TB, owner int) string {
	t.Helper()
	dst := filepath.Join(SearchableTempDir(t), "rootfs")
	if out, err := exec.Command("cp", "-a", Rootfs(t), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	if owner != 0 {
		id := strconv.Itoa(owner)
		if out, err := exec.Command("chown", "-R", "-h", id+":"+id, dst).CombinedOutput(); err != nil {
			t.Fatalf("chown rootfs: %v: %s", err, out)
		}
	}
	return dst
}

// KeyValues parses the "KEY<sep>VALUE" lines a container script prints.
func KeyValues(out, sep string) map[string]string {
	m := map[string]string{}
	for _, l := range Lines(out) {
		if k, v, ok := strings.Cut(l, sep); ok {
			m[k] = v
		}
	}
	return m
}
