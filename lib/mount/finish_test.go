package mount

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"barco/lib/sysprog"
	"barco/lib/testutil"
	"golang.org/x/sys/unix"
)

// maskPaths runs the steps of emitMasks.
func maskPaths(cfg *Config, proc, sys bool) error {
	return runEmitted(func(b *sysprog.Builder) error { return emitMasks(b, cfg, proc, sys) })
}

// inMountNS runs f on a thread of its own in a new mount namespace, with
// its mounts private, so that what f mounts stays there; the thread ends
// with it.
func inMountNS(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // left locked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// The masks of a config: a directory under an empty read-only tmpfs, a
// file under /dev/null (the tmpfs fails with ENOTDIR first), a missing
// path skipped, a read-only path bound read-only; and a path that neither
// form can take fails with the second's error, named as mount names it.
func TestMaskPaths(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	for _, d := range []string{"dir", "ro"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dir/secret", "file", "ro/data"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{
		Masked:   []string{filepath.Join(dir, "dir"), filepath.Join(dir, "file"), filepath.Join(dir, "missing")},
		Readonly: []string{filepath.Join(dir, "ro"), filepath.Join(dir, "missing-too")},
	}
	err := inMountNS(t, func() error {
		if err := maskPaths(cfg, true, true); err != nil {
			return err
		}
		if entries, err := os.ReadDir(filepath.Join(dir, "dir")); err != nil || len(entries) != 0 {
			t.Errorf("masked directory: %v entries, %v; want none", len(entries), err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dir/new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write in the masked directory: %v, want EROFS", err)
		}
		if data, err := os.ReadFile(filepath.Join(dir, "file")); err != nil || len(data) != 0 {
			t.Errorf("masked file: %q, %v; want it empty", data, err)
		}
		if data, err := os.ReadFile(filepath.Join(dir, "ro/data")); err != nil || string(data) != "secret" {
			t.Errorf("read-only path: %q, %v", data, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ro/data"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write in the read-only path: %v, want EROFS", err)
		}
		bad := filepath.Join(dir, "file", "below")
		err := maskPaths(&Config{Masked: []string{bad}}, true, true)
		if want := "mount /dev/null on " + bad + " (MS_BIND): not a directory"; err == nil || err.Error() != want {
			t.Errorf("a path below a file: %v, want %q", err, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runEmitted runs what emit appends.
func runEmitted(emit func(b *sysprog.Builder) error) error {
	var b sysprog.Builder
	if err := emit(&b); err != nil {
		return err
	}
	_, err := runSteps(&b)
	return err
}

// The working directory is resolved in the root, as the container would:
// an absolute symlink leads within it.
func TestEmitWorkdir(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/sub", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	err := inMountNS(t, func() error { // a thread with a working directory of its own
		// Opened in the namespace: getcwd finds no path to a mount of
		// another one.
		root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(root)
		if err := runEmitted(func(b *sysprog.Builder) error { return emitWorkdir(b, sysprog.Int(root), "link") }); err != nil {
			return err
		}
		if wd, err := os.Getwd(); err != nil || wd != filepath.Join(dir, "sub") {
			t.Errorf("working directory %q, %v; want %s/sub", wd, err, dir)
		}
		err = runEmitted(func(b *sysprog.Builder) error { return emitWorkdir(b, sysprog.Int(root), "missing") })
		if want := "workdir missing: no such file or directory"; err == nil || err.Error() != want {
			t.Errorf("a missing working directory: %v, want %q", err, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A /dev/null that is not the null device fails the check, with the hint.
func TestEmitNullCheck(t *testing.T) {
	testutil.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "null")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := inMountNS(t, func() error {
		check := func(b *sysprog.Builder) error { emitNullCheck(b); return nil }
		if err := runEmitted(check); err != nil {
			t.Errorf("the real /dev/null: %v", err)
		}
		if err := unix.Mount(file, "/dev/null", "", unix.MS_BIND, ""); err != nil {
			return err
		}
		if err := runEmitted(check); err == nil || err.Error() != "rootfs /dev/null is not the null device (masking files needs it; or give --no-masks)" {
			t.Errorf("a file on /dev/null: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
