package cgroup

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func detect(t *testing.T, kind string) *Layout {
	t.Helper()
	l, err := DetectLayout(filepath.Join("testdata", "mountinfo."+kind), filepath.Join("testdata", "cgroup."+kind))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDetectLayout(t *testing.T) {
	l := detect(t, "hybrid")
	if l.Mode != Hybrid || l.V2 == nil || l.V2.Mount != "/sys/fs/cgroup/unified" || len(l.V1) != 8 {
		t.Fatalf("hybrid: mode %v, v2 %+v, %d v1 hierarchies", l.Mode, l.V2, len(l.V1))
	}
	if h := l.Controller("memory"); h == nil || h.Mount != "/sys/fs/cgroup/memory" || h.Own != "/process_api/ed0e" {
		t.Errorf("hybrid memory hierarchy: %+v", h)
	}
	if l.Controller("hugetlb") != nil {
		t.Error("hybrid: an unmounted controller was found")
	}

	l = detect(t, "unified")
	if l.Mode != Unified || len(l.V1) != 0 || l.V2.Own != "/user.slice/user-0.slice/session-1.scope" {
		t.Errorf("unified: %+v, v2 %+v", l, l.V2)
	}

	l = detect(t, "legacy")
	if l.Mode != Legacy || l.V2 != nil || len(l.V1) != 3 {
		t.Fatalf("legacy: %+v", l)
	}
	cpu := l.Controller("cpuacct")
	if cpu == nil || !reflect.DeepEqual(cpu.Controllers, []string{"cpu", "cpuacct"}) || cpu.Root != "/docker/abc" {
		t.Errorf("legacy cpu,cpuacct hierarchy: %+v", cpu)
	}
	if l.Controller("cpu") != cpu {
		t.Error("cpu and cpuacct are not the same hierarchy")
	}

	if _, err := DetectLayout("testdata/mountinfo.none", "testdata/cgroup.unified"); err == nil {
		t.Error("no error for a missing mountinfo")
	}
}

func TestLocate(t *testing.T) {
	cases := []struct {
		kind, parent  string
		memory, v2    string
		cpuacct, pids string
	}{
		{"hybrid", "barco", "/sys/fs/cgroup/memory/process_api/ed0e/barco/c1", "/sys/fs/cgroup/unified/barco/c1", "/sys/fs/cgroup/cpuacct/barco/c1", "/sys/fs/cgroup/pids/barco/c1"},
		{"hybrid", "/top/barco", "/sys/fs/cgroup/memory/top/barco/c1", "/sys/fs/cgroup/unified/top/barco/c1", "/sys/fs/cgroup/cpuacct/top/barco/c1", "/sys/fs/cgroup/pids/top/barco/c1"},
		// v2: beside the own cgroup, which has processes in it.
		{"unified", "barco", "", "/sys/fs/cgroup/user.slice/user-0.slice/barco/c1", "", ""},
		// A container's view: its own cgroup is the root of the mount.
		{"legacy", "barco", "/sys/fs/cgroup/memory/barco/c1", "", "/sys/fs/cgroup/cpu,cpuacct/barco/c1", "/sys/fs/cgroup/pids/barco/c1"},
	}
	for _, tc := range cases {
		c, err := Locate(detect(t, tc.kind), tc.parent, "c1")
		if err != nil {
			t.Fatal(err)
		}
		got := []string{c.Dir("memory"), c.V2, c.Dir("cpuacct"), c.Dir("pids")}
		want := []string{tc.memory, tc.v2, tc.cpuacct, tc.pids}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s parent %s:\n got %q\nwant %q", tc.kind, tc.parent, got, want)
		}
	}
	// Hybrid: the v2 cgroup matches the v1 ones, below the caller's.
	l := detect(t, "hybrid")
	l.V2.Own = "/a/b"
	if c, _ := Locate(l, "barco", "c1"); c.V2 != "/sys/fs/cgroup/unified/a/b/barco/c1" {
		t.Errorf("hybrid v2 below /a/b: %s", c.V2)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := Locate(detect(t, "hybrid"), "barco", bad); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("Locate name %q: %v", bad, err)
		}
	}
}
