package ns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

func TestParseJoin(t *testing.T) {
	j, err := ParseJoin("net=/run/netns/x")
	if err != nil || j.Flag != unix.CLONE_NEWNET || j.Path != "/run/netns/x" || j.inChild() {
		t.Errorf("ParseJoin net: %+v, %v", j, err)
	}
	for s, flag := range map[string]uintptr{"user=/proc/1/ns/user": unix.CLONE_NEWUSER, "mnt=/proc/1/ns/mnt": unix.CLONE_NEWNS, "mount=/proc/1/ns/mnt": unix.CLONE_NEWNS} {
		if j, err := ParseJoin(s); err != nil || j.Flag != flag || !j.inChild() {
			t.Errorf("ParseJoin(%q): %+v, %v; want it joined by the child", s, j, err)
		}
	}
	for _, bad := range []string{"net", "net=", "foo=/x"} {
		if _, err := ParseJoin(bad); err == nil {
			t.Errorf("ParseJoin(%q) accepted it", bad)
		}
	}
	c := &Config{Flags: unix.CLONE_NEWNET, Joins: []Join{{unix.CLONE_NEWNET, "net", "/x"}}, Program: []string{"true"}, UID: -1, GID: -1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "exclude") {
		t.Errorf("a new and a joined network namespace: %v", err)
	}
	c = &Config{Flags: unix.CLONE_NEWPID, Joins: []Join{{unix.CLONE_NEWNS, "mnt", "/x"}}, Program: []string{"true"}, UID: -1, GID: -1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no new namespace") {
		t.Errorf("a new pid namespace and a joined mount namespace: %v", err)
	}
	c = &Config{Init: true, Joins: []Join{{unix.CLONE_NEWUSER, "user", "/x"}}, Program: []string{"true"}, UID: -1, GID: -1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--init") {
		t.Errorf("--init and a joined user namespace: %v", err)
	}
}

// forkJoined without a namespace to join (which needs root): the child
// arranges its descriptors (the one at 0 moved up first, the one above
// passed down), enters its working directory and execs by descriptor.
func TestForkJoinedArrangesAndExecs(t *testing.T) {
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	sh := "/bin/sh"
	attr := &syscall.ProcAttr{Dir: dir, Env: []string{"X=y"}, Files: []uintptr{null.Fd(), out.Fd(), out.Fd(), 2},
		Sys: &syscall.SysProcAttr{Setsid: true}}
	pid, err := forkJoined(sh, []string{"sh", "-c", `pwd; echo $X; test -e /proc/self/fd/3 && echo fd3; [ $$ = "$(cut -d' ' -f6 /proc/self/stat)" ] && echo leads`}, attr, -1, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("wait: %v, %v", ws, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out"))
	if want := dir + "\ny\nfd3\nleads\n"; string(got) != want {
		t.Errorf("child wrote %q, want %q", got, want)
	}

	attr.Dir = filepath.Join(dir, "missing")
	_, err = forkJoined(sh, []string{"sh", "-c", "true"}, attr, -1, -1, nil)
	var je *sysprog.StepError
	if !errors.As(err, &je) || je.Step != stepChdir || !errors.Is(err, unix.ENOENT) {
		t.Errorf("a missing working directory: %v, want the chdir step's ENOENT", err)
	}
}
