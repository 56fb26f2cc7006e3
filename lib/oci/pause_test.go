package oci

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The freezer is the container's own v2 cgroup when it has one, else its
// v1 freezer cgroup; never a parent it may share.
func TestFreezerOf(t *testing.T) {
	root := t.TempDir()
	parent, v2, v1 := filepath.Join(root, "unified", "p"), filepath.Join(root, "unified", "p", "c"), filepath.Join(root, "freezer", "p", "c")
	for _, d := range []string{v2, v1} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(parent, "cgroup.freeze"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(v1, "freezer.state"), []byte("THAWED\n"), 0o644)
	st := &State{State: specs.State{ID: "c"}, CgroupDirs: []string{v2, v1, parent}}
	f, err := freezerOf(st)
	if err != nil || f.dir != v1 || f.v2 {
		t.Fatalf("freezer %+v, %v; want the v1 one, the v2 leaf having no cgroup.freeze", f, err)
	}
	if f.frozen() || pausedStatus(st, specs.StateRunning) != specs.StateRunning {
		t.Error("a thawed container reads as frozen")
	}
	os.WriteFile(filepath.Join(v1, "freezer.state"), []byte("FROZEN\n"), 0o644)
	if pausedStatus(st, specs.StateRunning) != statePaused || pausedStatus(st, specs.StateStopped) != specs.StateStopped {
		t.Error("a frozen container does not read as paused")
	}
	os.WriteFile(filepath.Join(v2, "cgroup.freeze"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(v2, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644)
	if f, err = freezerOf(st); err != nil || f.dir != v2 || !f.v2 || !f.frozen() {
		t.Errorf("freezer %+v, %v; want the v2 leaf, frozen", f, err)
	}
	if err := f.set(false); err != nil {
		t.Errorf("thaw: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(v2, "cgroup.freeze")); string(data) != "0" {
		t.Errorf("thaw wrote %q", data)
	}
	if _, err := freezerOf(&State{State: specs.State{ID: "c"}}); err == nil {
		t.Error("a container without cgroups of its own has a freezer")
	}
}
