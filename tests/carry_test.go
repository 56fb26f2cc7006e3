package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"barco/lib/testutil"
)

// chmodHelper is a static program for the rootfs: it opens /proc/PID/exe
// (as container root, which may), becomes container uid UID and tries to
// fchmod that file 0777. It prints "fchmod: ok" when that works.
const chmodHelper = `package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	uid, _ := strconv.Atoi(os.Args[2])
	fd, err := syscall.Open("/proc/"+os.Args[1]+"/exe", syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		fmt.Println("setresuid:", err)
		os.Exit(3)
	}
	if err := syscall.Fchmod(fd, 0o777); err != nil {
		fmt.Println("fchmod:", err)
		os.Exit(4)
	}
	fmt.Println("fchmod: ok")
}
`

// A stage binary may run inside the container as the host file only if no
// process inside can write it. Here the uid map also maps host uid 0, the
// binary's owner, at container uid 65536 (gid 0 stays unmapped, so
// barco-mount itself cannot write it): a process that takes uid 65536
// owns the host binary. barco-mount must carry a sealed file instead (a
// read-only overlayfs of its directory, or a memfd copy), and the host
// file must stay untouched (CVE-2019-5736).
func TestCarryOwnerMappedElsewhereIsSealed(t *testing.T) {
	testutil.RequireRoot(t)
	// Copies of the stages, so that the real bin/ is never at risk.
	bindir := filepath.Join(testutil.SearchableTempDir(t), "bin")
	if err := os.Mkdir(bindir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"barco-ns", "barco-mount"} {
		if out, err := exec.Command("cp", testutil.Bin(t, s), filepath.Join(bindir, s)).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
	}
	rootfs := testutil.CopyRootfs(t, 100000)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module h\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(chmodHelper), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(rootfs, "h"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build helper: %v: %s", err, out)
	}
	if err := os.Chown(filepath.Join(rootfs, "h"), 100000, 100000); err != nil {
		t.Fatal(err)
	}

	ns := filepath.Join(bindir, "barco-ns")
	r := testutil.Run(t, []string{"BARCO_DEBUG=1"}, ns, "-U", "-p", "-m",
		"--uid-map", "0:100000:65536", "--uid-map", "65536:0:1", "--gid-map", "0:100000:65536",
		"--", filepath.Join(bindir, "barco-mount"), "--rootfs", rootfs,
		"--", "barco-ns", "-u", "--", "/bin/sh", "-c", "/h $PPID 65536")
	// The helper must have got as far as the attempt, and been refused.
	if r.Code != 4 || !strings.HasPrefix(r.Stdout, "fchmod: ") {
		t.Errorf("the helper did not try the fchmod: status %d, stdout %q, stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	st, err := os.Stat(ns)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 || strings.Contains(r.Stdout, "fchmod: ok") {
		t.Errorf("a container process changed the host's barco-ns to %v (helper said %q); carried as: %s",
			st.Mode().Perm(), strings.TrimSpace(r.Stdout), carriedAs(r.Stderr))
	}
}

func carriedAs(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "carry barco-ns") {
			return l
		}
	}
	return "(no debug line)"
}
