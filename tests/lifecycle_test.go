package tests

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"barco/lib/testutil"
)

// treeListing is every entry under dir with its type, mode, owner and
// size, one a line, as a user would compare two `ls -lnR` outputs.
func treeListing(t *testing.T, dir string) string {
	t.Helper()
	l, err := listTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func listTree(dir string) (string, error) { return listTreeWith(dir, false) }

// listTreeWith is listTree, with each entry's mtime and a directory's own
// size when mtimes is set: an image a container ran on must not differ
// even there.
func listTreeWith(dir string, mtimes bool) (string, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		size := fi.Size()
		if fi.IsDir() && !mtimes {
			size = 0 // a directory's size depends on its history, not its entries
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v %d:%d %d", rel, fi.Mode(), st.Uid, st.Gid, size)
		if mtimes {
			line += fmt.Sprintf(" %d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// A start that fails after barco-mount has made its mount points, in
// barco-mount itself or in any stage after it, linked or exec'd, leaves the
// rootfs as it was: the mount points it created are gone again. So does a
// run that succeeds.
func TestFailedStartLeavesRootfsUnchanged(t *testing.T) {
	bothStageModes(t, testStartLeavesRootfsUnchanged)
}

func testStartLeavesRootfsUnchanged(t *testing.T) {
	bin := barcoBin(t)
	for _, c := range []struct {
		name   string
		owner  int // of the rootfs copy
		argv   func(rootfs string) []string
		status int
		stderr string
	}{
		{"no-userns-missing-program", 0, func(r string) []string {
			return []string{bin, "run", "--no-userns", "--rootfs", r, "-v", "/etc:/v3", "--tmpfs", "/t4", "--", "/nonexistent"}
		}, 127, "barco-seccomp: exec /nonexistent: no such file or directory"},
		{"userns-missing-program", 100000, func(r string) []string {
			return []string{bin, "run", "--rootfs", r, "-v", "/etc:/v3", "--tmpfs", "/t4/deeper", "--", "/nonexistent"}
		}, 127, "barco-seccomp: exec /nonexistent: no such file or directory"},
		{"init-missing-program", 100000, func(r string) []string {
			return []string{bin, "run", "--init", "--rootfs", r, "-v", "/etc:/v3", "--", "/nonexistent"}
		}, 127, "barco-seccomp: exec /nonexistent: no such file or directory"},
		{"success", 100000, func(r string) []string {
			return []string{bin, "run", "--rootfs", r, "-v", "/etc:/v3:ro", "--tmpfs", "/t4", "--", "true"}
		}, 0, ""},
		{"caps-unknown-user", 0, func(r string) []string {
			return []string{testutil.Bin(t, "barco-ns"), "-m", "-p", "--", testutil.Bin(t, "barco-mount"), "--rootfs", r,
				"-v", "/etc:/v2", "--", "barco-caps", "--user", "nosuch", "--", "true"}
		}, 125, "barco-caps: user nosuch: not found in /etc/passwd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rootfs := testutil.CopyRootfs(t, c.owner)
			before := treeListing(t, rootfs)
			r := testutil.Run(t, nil, c.argv(rootfs)...)
			if r.Code != c.status || strings.TrimSpace(r.Stderr) != c.stderr {
				t.Errorf("status %d, stderr %q; want %d, %q", r.Code, r.Stderr, c.status, c.stderr)
			}
			if after := treeListing(t, rootfs); after != before {
				t.Errorf("rootfs changed by a failed start:\n%s", lineDiff(before, after))
			}
		})
	}
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	am, bm := in(a), in(b)
	var out []string
	for l := range am {
		if !bm[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range bm {
		if !am[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// --init is PID 1 above the next stage, which still gets the chain's
// environment: the descriptors kept by --preserve-fds reach PROGRAM, and
// BARCO_EXEC_STAGES=1 still makes every stage exec its own binary.
func TestInitKeepsTheChainsEnvironment(t *testing.T) {
	bin := barcoBin(t)
	f, err := os.CreateTemp(t.TempDir(), "fd3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, "through fd 3")
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--init", "--preserve-fds", "1", "--", "/bin/sh", "-c", "cat <&3")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "through fd 3" {
		t.Errorf("--init --preserve-fds 1: %q, %v; want %q", got, err, "through fd 3")
	}

	r := testutil.Run(t, []string{"BARCO_EXEC_STAGES=1"}, bin, "run", "--init", "--debug", "--", "/bin/true")
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr, "in this process") {
		t.Errorf("BARCO_EXEC_STAGES=1 with --init: a stage still ran linked:\n%s", r.Stderr)
	}
	for _, s := range []string{"exec barco-caps (carried", "exec barco-seccomp (carried"} {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("BARCO_EXEC_STAGES=1 with --init: no %q in the debug log:\n%s", s, r.Stderr)
		}
	}
}

// A handshake descriptor that is not open is one line and status 125.
func TestBadHandshakeFDIsOneLine(t *testing.T) {
	testutil.RequireRoot(t)
	r := testutil.Run(t, []string{"BARCO_NS_SETUP=fd=9,uid=-1,gid=-1"}, testutil.Bin(t, "barco-seccomp"), "--", "true")
	want := "barco-seccomp: namespace handshake: read fd 9: bad file descriptor"
	if r.Code != 125 || strings.TrimSpace(r.Stderr) != want {
		t.Errorf("status %d, stderr %q; want 125, %q", r.Code, r.Stderr, want)
	}
}

// The pipe barco-ns hands to barco-mount never reaches PROGRAM, neither
// as a descriptor nor as a variable, even when no barco-mount takes it.
func TestCreatedPipeDoesNotReachProgram(t *testing.T) {
	testutil.RequireRoot(t)
	r := testutil.Run(t, nil, testutil.Bin(t, "barco-ns"), "-p", "--", "barco-caps", "--",
		"/bin/sh", "-c", `env | grep -E "^BARCO_(MOUNT|STAGE|NS)_"; for fd in /proc/self/fd/*; do echo "fd ${fd##*/}"; done`)
	if r.Code != 0 {
		t.Fatalf("status %d: %s", r.Code, r.Stderr)
	}
	// The shell's glob of /proc/self/fd lists 0, 1 and 2, plus the
	// directory it reads, which is gone by the time it prints.
	want := "fd 0\nfd 1\nfd 2\n"
	if r.Stdout != want && r.Stdout != want+"fd 3\n" {
		t.Errorf("PROGRAM got %q, want only fds 0-2 and no BARCO_ variable", r.Stdout)
	}
}

// The --init init stays for the container's whole life: it holds none of
// the host's descriptors, neither the caller's nor the chain's, only its
// standard ones and the pidfd of its child.
func TestInitHoldsNoHostDescriptors(t *testing.T) {
	bin := barcoBin(t)
	leak, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	cmd := exec.Command(bin, "run", "--init", "--pids-limit", "64", "--", "/bin/sleep", "3")
	cmd.ExtraFiles = []*os.File{leak} // fd 3, not close-on-exec, as a careless caller leaves one
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	// Once PROGRAM runs under it, the init has closed what it does not
	// keep: poll until its descriptors are its own, or time is up.
	var held []string
	seen := false
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		kids := childrenOf(cmd.Process.Pid)
		if len(kids) == 0 {
			continue
		}
		init, _ := strconv.Atoi(kids[0])
		if len(childrenOf(init)) == 0 {
			continue
		}
		seen = true
		entries, _ := os.ReadDir("/proc/" + kids[0] + "/fd")
		held = nil
		for _, e := range entries {
			target, _ := os.Readlink("/proc/" + kids[0] + "/fd/" + e.Name())
			if e.Name() != "0" && e.Name() != "1" && e.Name() != "2" && target != "anon_inode:[pidfd]" {
				held = append(held, e.Name()+"->"+target)
			}
		}
		if len(held) == 0 {
			return
		}
	}
	if !seen {
		t.Fatal("found no init with PROGRAM under it")
	}
	t.Errorf("the init still holds %q", held)
}
