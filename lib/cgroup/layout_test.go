package cgroup

import (
	"os"
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
		c, err := Locate(detect(t, tc.kind), tc.parent, "c1", []string{"memory", "cpuacct", "pids"})
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
	if c, _ := Locate(l, "barco", "c1", alwaysV1); c.V2 != "/sys/fs/cgroup/unified/a/b/barco/c1" {
		t.Errorf("hybrid v2 below /a/b: %s", c.V2)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := Locate(detect(t, "hybrid"), "barco", bad, nil); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("Locate name %q: %v", bad, err)
		}
	}
}

func TestV1Controllers(t *testing.T) {
	cases := []struct {
		l     Limits
		stats bool
		mode  Mode
		want  string
	}{
		{Limits{}, false, Hybrid, "pids,devices,memory"},
		{Limits{Pids: 10, Devices: DefaultDevices, Memory: 1 << 20}, true, Hybrid, "pids,devices,memory"},
		{Limits{}, true, Legacy, "pids,devices,memory,cpuacct"},
		{Limits{CPUQuota: 1000}, false, Hybrid, "pids,devices,memory,cpu"},
		{Limits{CPUWeight: 10, CpusetMems: "0", IOWeight: 5}, false, Legacy, "pids,devices,memory,cpu,cpuset,blkio"},
	}
	for _, tc := range cases {
		if got := strings.Join(V1Controllers(&tc.l, tc.stats, tc.mode), ","); got != tc.want {
			t.Errorf("V1Controllers(%+v, %v, %v) = %s, want %s", tc.l, tc.stats, tc.mode, got, tc.want)
		}
	}
}

// A cgroup joins only the v1 hierarchies of the controllers asked for;
// Dir is "" in the others, and the v2 cgroup is there all the same.
func TestLocateJoinsOnlyWhatIsAsked(t *testing.T) {
	l := detect(t, "hybrid")
	c, err := Locate(l, "barco", "c1", alwaysV1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.V1) != 3 || c.Dir("pids") == "" || c.Dir("devices") == "" || c.Dir("memory") == "" {
		t.Errorf("default: v1 dirs %v", c.V1)
	}
	for _, ctrl := range []string{"cpu", "cpuacct", "cpuset", "freezer", "blkio"} {
		if d := c.Dir(ctrl); d != "" {
			t.Errorf("joined %s without being asked: %s", ctrl, d)
		}
	}
	if c.V2 == "" {
		t.Error("no v2 cgroup")
	}
	want := []string{c.V2, c.Dir("memory"), c.Dir("devices"), c.Dir("pids")}
	if got := c.dirs(); !reflect.DeepEqual(got, want) {
		t.Errorf("dirs() = %q, want v2 then the layout's order %q", got, want)
	}
}

// A mount over a hierarchy hides it: its directories are no cgroups.
func TestDetectLayoutSkipsCoveredMounts(t *testing.T) {
	hybrid, err := os.ReadFile(filepath.Join("testdata", "mountinfo.hybrid"))
	if err != nil {
		t.Fatal(err)
	}
	detectWith := func(extra string) (*Layout, error) {
		p := filepath.Join(t.TempDir(), "mountinfo")
		if err := os.WriteFile(p, append(hybrid, extra...), 0o644); err != nil {
			t.Fatal(err)
		}
		return DetectLayout(p, filepath.Join("testdata", "cgroup.hybrid"))
	}
	// crun's way to run on a hybrid host: a tmpfs over the empty v2 mount.
	l, err := detectWith("90 41 0:90 / /sys/fs/cgroup/unified rw,relatime - tmpfs none rw\n")
	if err != nil || l.Mode != Legacy || l.V2 != nil || len(l.V1) != 8 {
		t.Errorf("tmpfs over the v2 mount: %+v, %v; want legacy with 8 v1 hierarchies", l, err)
	}
	// A mount under a hierarchy hides nothing of it.
	l, err = detectWith("91 35 0:91 / /sys/fs/cgroup/memory/sub rw,relatime - tmpfs none rw\n")
	if err != nil || l.Mode != Hybrid || l.Controller("memory") == nil {
		t.Errorf("tmpfs under the memory hierarchy: %+v, %v; want it still there", l, err)
	}
	if _, err := detectWith("92 31 0:92 / /sys/fs/cgroup rw,relatime - tmpfs none rw\n"); err == nil {
		t.Error("a tmpfs over /sys/fs/cgroup hides every hierarchy, but one was found")
	}

	// Mounts made before they are attached are listed before mounts
	// attached earlier, as barco-mount makes a root: the tree of ids
	// decides, not the order. Both files are barco containers' own.
	// barco run -v /sys/fs/cgroup:/sys/fs/cgroup: the volume's tmpfs
	// (75) stacks on barco's (68), whose hierarchies it hides.
	l = detect(t, "volume")
	if m := l.Controller("memory"); l.Mode != Hybrid || len(l.V1) != 8 || m == nil || m.Root != "/../../../.." || l.V2 == nil || l.V2.Root != "/../.." {
		t.Errorf("volume over /sys/fs/cgroup: %+v, memory %+v, v2 %+v; want the volume's hierarchies", l, m, l.V2)
	}
	// An OCI bundle without a cgroup namespace: pids, devices and memory
	// are the container's own cgroups, made before their tmpfs.
	l = detect(t, "nocgroupns")
	if m := l.Controller("memory"); l.Mode != Hybrid || len(l.V1) != 8 || m == nil || m.Root != "/barco/nocg" {
		t.Errorf("no cgroup namespace: %+v, memory %+v; want 8 v1 hierarchies, memory at /barco/nocg", l, m)
	}
}
