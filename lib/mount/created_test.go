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

	r := report(t, rootfs, "/a", "/a/b", "/a/b/empty", "/full", "/written", "/link-parent", "/link-parent/victim")
	RemoveCreated(r, nil)

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

// A rootfs path that names another directory by the time the supervisor
// reads the report (the container swapped it) is left alone.
func TestRemoveCreatedChecksTheRootfs(t *testing.T) {
	base := t.TempDir()
	rootfs, other := filepath.Join(base, "rootfs"), filepath.Join(base, "other")
	for _, d := range []string{rootfs, other, filepath.Join(other, "empty")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := report(t, rootfs, "/empty")
	os.Remove(rootfs)
	os.Symlink(other, rootfs)
	RemoveCreated(r, nil)
	if _, err := os.Stat(filepath.Join(other, "empty")); err != nil {
		t.Errorf("removed from a directory that was not the rootfs: %v", err)
	}
}

// report is barco-mount's report of created entries in rootfs, as the
// read end of its pipe, ready for RemoveCreated.
func report(t *testing.T, rootfs string, created ...string) int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]) })
	t.Setenv(CreatedFDEnv, strconv.Itoa(p[1]))
	id, err := RootfsID(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if err := reportCreated(rootfs, id, created); err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(p[0], true)
	return p[0]
}
