package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"barco/lib/testutil"
)

// With --init, barco-ns's init is PID 1 of the container for its whole
// life. It must hold nothing of the host: a working directory left on the
// host tree would let the container's root (CAP_SYS_PTRACE inside its own
// user namespace is all a non-dumpable PID 1 asks for) read and write the
// host through /proc/1/cwd.
func TestNSInitHoldsNothingOfTheHost(t *testing.T) {
	testutil.RequireRoot(t)
	rootfs := testutil.CopyRootfs(t, 100000)
	hostDir := testutil.SearchableTempDir(t)
	if err := os.Chmod(hostDir, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "host-secret"), []byte("host-only\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Bin(t, "barco-ns"), "-U", "-p", "-m", "--init", "--",
		testutil.Bin(t, "barco-mount"), "--rootfs", rootfs, "--",
		"/bin/sh", "-c", "cat /proc/1/cwd/host-secret; echo x > /proc/1/cwd/written-from-container")
	cmd.Dir = hostDir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	if bytes.Contains(out.Bytes(), []byte("host-only")) {
		t.Errorf("the container read a host file through /proc/1/cwd: %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(hostDir, "written-from-container")); err == nil {
		t.Errorf("the container wrote a host file through /proc/1/cwd")
	}
}
