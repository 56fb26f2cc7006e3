package mount

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// What barco-mount reports, the supervisor removes: empty directories and
// empty files it made, deepest first; anything the container filled, and
// anything outside the rootfs a symlink points at, stays.
func TestRemoveCreated(t *testing.T) {
	rootfs := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"a/b", "full", "link-parent"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(rootfs, "a/b/empty"), nil, 0o644)
	os.WriteFile(filepath.Join(rootfs, "full/kept"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "written"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(outside, "victim"), 0o755)
	// The container replaced a created directory by a symlink out.
	os.Remove(filepath.Join(rootfs, "link-parent"))
	os.Symlink(outside, filepath.Join(rootfs, "link-parent"))

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	t.Setenv(CreatedFDEnv, strconv.Itoa(p[1]))
	if err := reportCreated(rootfs, []string{"/a", "/a/b", "/a/b/empty", "/full", "/written", "/link-parent", "/link-parent/victim"}); err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(p[0], true)
	RemoveCreated(p[0])

	for p, want := range map[string]bool{
		"a": false, "full/kept": true, "written": true, "link-parent": true,
	} {
		_, err := os.Lstat(filepath.Join(rootfs, p))
		if got := err == nil; got != want {
			t.Errorf("%s: there %v, want %v", p, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Errorf("a directory outside the rootfs was removed: %v", err)
	}
}
