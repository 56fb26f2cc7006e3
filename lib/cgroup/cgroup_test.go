package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLayout is a hybrid layout whose hierarchies are plain directories
// under a temporary directory.
func fakeLayout(t *testing.T) (*Layout, string) {
	root := t.TempDir()
	l := &Layout{Mode: Hybrid, V2: &Hierarchy{Mount: root + "/unified", Root: "/", Own: "/"}}
	for _, c := range []string{"memory", "pids"} {
		l.V1 = append(l.V1, &Hierarchy{Mount: root + "/" + c, Root: "/", Controllers: []string{c}, Own: "/"})
	}
	for _, d := range []string{"unified", "memory", "pids"} {
		fakeDir(t, root+"/"+d)
	}
	return l, root
}

func TestCreateRemove(t *testing.T) {
	l, root := fakeLayout(t)
	c, err := Locate(l, "barco", "c1", alwaysV1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(&Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"unified", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join(root, d, "barco/c1")); err != nil {
			t.Errorf("not created in %s: %v", d, err)
		}
	}
	again, _ := Locate(l, "barco", "c1", alwaysV1)
	if err := again.Create(&Limits{}); !errors.Is(err, ErrInUse) {
		t.Errorf("second Create of the same name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "memory/barco/c1")); err != nil {
		t.Errorf("a failed Create removed the cgroup in use: %v", err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"unified", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join(root, d, "barco")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("left behind in %s: %v", d, err)
		}
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	l, root := fakeLayout(t)
	c, _ := Locate(l, "barco", "c1", alwaysV1)
	// The fake memory hierarchy has no memory.limit_in_bytes: the write fails.
	if err := c.Create(&Limits{Memory: 1 << 20}); err == nil {
		t.Fatal("Create wrote a limit into a missing control file")
	}
	for _, d := range []string{"unified", "memory", "pids"} {
		if ents, _ := os.ReadDir(filepath.Join(root, d)); len(ents) != 0 {
			t.Errorf("left behind in %s: %v", d, ents)
		}
	}
	if err := c.Create(&Limits{CPUQuota: 1000}); err == nil || err.Error() != "controller cpu: not mounted (cgroup v1)" {
		t.Errorf("Create with the cpu controller missing: %v", err)
	}
}

// A cgroup is recorded with its owner while it exists; a recorded cgroup
// whose owner is gone is removed by the next run, whose own name it may
// even hold, and a cgroup with no record (--exec's, another manager's) is
// never touched.
func TestCreateRemovesOnlyStaleRecordedCgroups(t *testing.T) {
	l, root := fakeLayout(t)
	records := t.TempDir()
	// A process that is gone: a child that has exited and been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	staleRecord := func(name string) {
		c, _ := Locate(l, "barco", name, alwaysV1)
		for _, d := range c.dirs() {
			fakeDir(t, d)
		}
		text := fmt.Sprintf("owner %d 1\n%s\n", dead.Process.Pid, strings.Join(c.dirs(), "\n"))
		if err := os.WriteFile(recordPath(records, c.dirs()), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	staleRecord("stale")
	staleRecord("c1") // a stale cgroup with the name of the next run
	foreign := fakeDir(t, filepath.Join(root, "memory/barco/exec-made"))

	c, _ := Locate(l, "barco", "c1", alwaysV1)
	c.Records = records
	if err := c.Create(&Limits{}); err != nil {
		t.Fatalf("Create over a stale cgroup of the same name: %v", err)
	}
	rec, err := os.ReadFile(recordPath(records, c.dirs()))
	if want := fmt.Sprintf("owner %d ", os.Getpid()); err != nil || !strings.HasPrefix(string(rec), want) {
		t.Errorf("record %q, %v; want it to start %q", rec, err, want)
	}
	c.removeStaleLater()
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"unified", "memory", "pids"} {
		for _, name := range []string{"stale", "c1"} {
			if _, err := os.Stat(filepath.Join(root, d, "barco", name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup %s kept in %s", name, d)
			}
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a cgroup without a record was removed: %v", err)
	}
	// The last record gone, so is their directory.
	if ents, err := os.ReadDir(records); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record directory left: %v, %v", ents, err)
	}
}

// Open (--exec) uses the cgroup where it is, makes it where it is not,
// and if it fails removes only what it made.
func TestOpenMakesWhatIsMissing(t *testing.T) {
	l, root := fakeLayout(t)
	fakeDir(t, root+"/memory/barco/c1")
	c, _ := Locate(l, "barco", "c1", alwaysV1)
	if err := c.Open(&Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"unified", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join(root, d, "barco/c1")); err != nil {
			t.Errorf("no cgroup in %s after Open: %v", d, err)
		}
	}
	os.Remove(root + "/pids/barco/c1")
	os.Remove(root + "/pids/barco")
	c, _ = Locate(l, "barco", "c1", alwaysV1)
	// The fake pids hierarchy has no pids.max: the write fails.
	if err := c.Open(&Limits{Pids: 5}); err == nil {
		t.Fatal("Open wrote a limit into a missing control file")
	}
	for d, want := range map[string]bool{"unified/barco/c1": true, "memory/barco/c1": true, "pids/barco": false} {
		if _, err := os.Stat(filepath.Join(root, d)); (err == nil) != want {
			t.Errorf("after a failed Open, %s: %v; want it there: %v", d, err, want)
		}
	}
}

// TestOpenUnified runs the v2 path of Open (--exec) on a fake unified tree
// whose cgroup exists already: controllers enabled in the parent, limits
// written into the cgroup.
func TestOpenUnified(t *testing.T) {
	root := t.TempDir()
	l := &Layout{Mode: Unified, V2: &Hierarchy{Mount: root, Root: "/", Own: "/user.slice/s.scope"}}
	parent := fakeDir(t, root+"/user.slice/barco", "cgroup.controllers", "cgroup.subtree_control")
	os.WriteFile(parent+"/cgroup.controllers", []byte("cpu memory pids\n"), 0o644)
	dir := fakeDir(t, parent+"/c1", "cgroup.controllers", "memory.max", "cpu.max")
	os.WriteFile(dir+"/cgroup.controllers", []byte("cpu memory\n"), 0o644)

	c, err := Locate(l, "barco", "c1", alwaysV1)
	if err != nil || c.V2 != dir {
		t.Fatalf("Locate: %v, %v", c, err)
	}
	if err := c.Open(&Limits{Memory: 64 << 20, CPUQuota: 50000}); err != nil {
		t.Fatal(err)
	}
	got := read(t, parent, "cgroup.subtree_control") + "|" + read(t, dir, "memory.max") + "|" + read(t, dir, "cpu.max")
	if got != "+memory +cpu|67108864|50000 100000" {
		t.Errorf("subtree_control|memory.max|cpu.max = %q", got)
	}
	if err := c.Open(&Limits{Pids: 5}); err == nil || err.Error() != "controller pids: not delegated to "+parent+" (cgroup v2; it has \"cpu memory\")" {
		t.Errorf("pids limit where pids is not enabled: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Open removed a cgroup it did not make: %v", err)
	}
}

// A run whose name a live run holds fails as in use and leaves that run's
// record alone, so that its cgroup is still swept should its owner die.
func TestCreateInUseKeepsTheOwnersRecord(t *testing.T) {
	l, _ := fakeLayout(t)
	records := t.TempDir()
	first, _ := Locate(l, "barco", "c1", alwaysV1)
	first.Records = records
	if err := first.Create(&Limits{}); err != nil {
		t.Fatal(err)
	}
	rec := recordPath(records, first.dirs())
	before, _ := os.ReadFile(rec)
	second, _ := Locate(l, "barco", "c1", alwaysV1)
	second.Records = records
	if err := second.Create(&Limits{}); !errors.Is(err, ErrInUse) {
		t.Errorf("second Create: %v, want %v", err, ErrInUse)
	}
	if after, err := os.ReadFile(rec); err != nil || string(after) != string(before) {
		t.Errorf("the owner's record became %q, %v; was %q", after, err, before)
	}
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rec); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left after Remove: %v", err)
	}
}
