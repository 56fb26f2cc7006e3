package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"barco/lib/chain"
	"barco/lib/testutil"
)

// delegatedUser is the uid a fake tree is delegated to: not the test's.
const delegatedUser = 4242

// fakeUserTree is a fake cgroup v2 tree as systemd makes it: the user's
// session scope is root's, user@UID.service and what is below it are the
// user's (Delegate=yes), and the caller runs in app.slice/term.scope.
func fakeUserTree(t *testing.T) (l *Layout, root string) {
	t.Helper()
	testutil.RequireRoot(t) // to give the delegated part to another uid
	root = t.TempDir()
	user := "/user.slice/user-4242.slice"
	service := user + "/user@4242.service"
	files := []string{"cgroup.procs", "cgroup.subtree_control", "cgroup.controllers"}
	for _, d := range []string{user, user + "/session-1.scope", service, service + "/app.slice", service + "/app.slice/term.scope"} {
		fakeDir(t, root+d, files...)
	}
	err := filepath.Walk(root+service, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, delegatedUser, delegatedUser)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Layout{Mode: Unified, V2: &Hierarchy{Mount: root, Root: "/", Own: service + "/app.slice/term.scope"}}, root
}

// A cgroup is the user's to make in the subtree systemd delegated to it,
// beside its own; not where the session scope is, and never on v1.
func TestDelegated(t *testing.T) {
	l, root := fakeUserTree(t)
	c, err := Locate(l, "barco", "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := root + "/user.slice/user-4242.slice/user@4242.service/app.slice/barco/c1"; c.V2 != want {
		t.Fatalf("cgroup %s, want %s", c.V2, want)
	}
	if err := c.Delegated(delegatedUser); err != nil {
		t.Errorf("in the delegated subtree: %v", err)
	}
	want := "/user.slice/user-4242.slice/user@4242.service/app.slice is uid 4242's (cgroup v2, not delegated to uid 1001)"
	if err := c.Delegated(1001); err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("another user: %v, want ...%q", err, want)
	}
	// Out of the session scope, root's, a move needs the cgroup.procs of
	// user-4242.slice, which is root's too.
	l.V2.Own = "/user.slice/user-4242.slice/session-1.scope"
	c, _ = Locate(l, "/user.slice/user-4242.slice/user@4242.service/app.slice", "c1", nil)
	want = "/user.slice/user-4242.slice/cgroup.procs is uid 0's (cgroup v2, not delegated to uid 4242)"
	if err := c.Delegated(delegatedUser); err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("from a root-owned session scope: %v, want ...%q", err, want)
	}
	hybrid, _ := fakeLayout(t)
	c, _ = Locate(hybrid, "barco", "c1", alwaysV1)
	if err := c.Delegated(delegatedUser); err == nil || err.Error() != "the hierarchies are cgroup v1 (hybrid), whose cgroups are root's" {
		t.Errorf("hybrid: %v", err)
	}
}

// An unprivileged caller without a delegated cgroup runs without one when
// nothing needs one, and fails naming why when a limit does; with one, it
// makes its cgroup there, but sets no device rules (an eBPF program).
func TestUnprivilegedCgroup(t *testing.T) {
	var log *chain.Log // logs nothing
	hybrid, _ := fakeLayout(t)
	c, _ := Locate(hybrid, "barco", "c1", alwaysV1)
	o := &Options{UID: delegatedUser}
	if err := o.checkUnprivileged(c, log); !errors.Is(err, errNoCgroup) {
		t.Errorf("no limit, no delegation: %v, want to run without a cgroup", err)
	}
	o.Limits.Pids = 10
	want := "limits and --stats need a cgroup, and uid 4242 may make none: the hierarchies are cgroup v1 (hybrid), whose cgroups are root's (" + DelegationHint + ")"
	if err := o.checkUnprivileged(c, log); err == nil || err.Error() != want {
		t.Errorf("a limit, no delegation:\n%v\nwant\n%s", err, want)
	}
	o = &Options{UID: delegatedUser, Stats: true}
	if err := o.checkUnprivileged(c, log); err == nil || errors.Is(err, errNoCgroup) {
		t.Errorf("--stats, no delegation: %v", err)
	}

	l, root := fakeUserTree(t)
	c, _ = Locate(l, "barco", "c1", nil)
	o = &Options{UID: delegatedUser, Limits: Limits{Pids: 10}}
	if err := o.checkUnprivileged(c, log); err != nil {
		t.Errorf("a limit, delegated: %v", err)
	}
	o.Limits.Devices = DefaultDevices
	if err := o.checkUnprivileged(c, log); err == nil || !strings.HasPrefix(err.Error(), "--devices: no device control for uid 4242") {
		t.Errorf("device rules, delegated: %v", err)
	}
	if err := c.Create(&Limits{}); err != nil {
		t.Fatal(err)
	}
	dir := root + "/user.slice/user-4242.slice/user@4242.service/app.slice/barco/c1"
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("not made in the delegated subtree: %v", err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("parent left after Remove: %v", err)
	}
}

func TestRecordDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1001")
	if got := RecordDir(0); got != DefaultRecordDir {
		t.Errorf("root: %s", got)
	}
	if got := RecordDir(1001); got != "/run/user/1001/barco/cgroups" {
		t.Errorf("a user with XDG_RUNTIME_DIR: %s", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got := RecordDir(1001); got != "" {
		t.Errorf("a user without XDG_RUNTIME_DIR: %q, want no records", got)
	}
}

// Root of a user's own user namespace (rootless podman's runtime) is
// checked as that user: on cgroup v1 its container has no cgroup, so an OCI
// create records none to remove; host root's has its directories.
func TestDirsUnprivileged(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"unified", "memory"} {
		fakeDir(t, root+"/"+d)
	}
	mountinfo, procCgroup := filepath.Join(root, "mountinfo"), filepath.Join(root, "cgroup")
	lines := "30 25 0:26 / " + root + "/memory rw,nosuid - cgroup cgroup rw,memory\n" +
		"31 25 0:27 / " + root + "/unified rw,nosuid - cgroup2 cgroup2 rw\n"
	if err := os.WriteFile(mountinfo, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(procCgroup, []byte("5:memory:/\n0::/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &Options{Parent: "barco", Name: "c1", Mountinfo: mountinfo, ProcCgroup: procCgroup, Unprivileged: true}
	if dirs, err := o.Dirs(); err != nil || dirs != nil {
		t.Errorf("root of a user namespace, no limit: %q, %v; want no cgroup", dirs, err)
	}
	o.Limits.Memory = 64 << 20
	if _, err := o.Dirs(); err == nil || !strings.Contains(err.Error(), "limits and --stats need a cgroup, and uid 0 may make none") {
		t.Errorf("root of a user namespace, a limit: %v", err)
	}
	o = &Options{Parent: "barco", Name: "c1", Mountinfo: mountinfo, ProcCgroup: procCgroup}
	if dirs, err := o.Dirs(); err != nil || len(dirs) != 2 || dirs[1] != root+"/memory/barco/c1" {
		t.Errorf("host root: %q, %v", dirs, err)
	}
}
