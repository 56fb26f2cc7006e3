package mount

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// copyUp copies a tree as the image holds it: modes, links as links,
// modification times; no mount is needed to check that.
func TestCopyDirKeepsModesLinksAndTimes(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o750))
	must(os.WriteFile(filepath.Join(src, "sub", "deeper", "file"), []byte("content\n"), 0o640))
	must(os.Chmod(filepath.Join(src, "sub", "deeper", "file"), 0o640))
	must(os.Symlink("../outside/nowhere", filepath.Join(src, "sub", "link")))
	must(os.Chtimes(filepath.Join(src, "sub", "deeper", "file"), mtime, mtime))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))

	s, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(err)
	d, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(err)
	defer unix.Close(d)
	must(copyUp(s, d)) // closes s

	data, err := os.ReadFile(filepath.Join(dst, "sub", "deeper", "file"))
	if err != nil || string(data) != "content\n" {
		t.Errorf("file: %q, %v", data, err)
	}
	fi, err := os.Stat(filepath.Join(dst, "sub", "deeper", "file"))
	must(err)
	if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Errorf("file: mode %v, mtime %v; want 0640, %v", fi.Mode(), fi.ModTime(), mtime)
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "deeper")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("directory: %v, %v; want mode 0750", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "sub", "link")); err != nil || l != "../outside/nowhere" {
		t.Errorf("link: %q, %v", l, err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v, %v", fi, err)
	}
}
