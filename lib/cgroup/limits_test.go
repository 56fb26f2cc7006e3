package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeDir makes dir with empty control files, as a fake cgroup.
func fakeDir(t *testing.T, dir string, files ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, dir, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func strs(ws []Write) []string {
	var s []string
	for _, w := range ws {
		s = append(s, filepath.Base(w.Dir)+"/"+w.String())
	}
	return s
}

var allLimits = Limits{
	Memory: 64 << 20, MemorySwap: 64 << 20, CPUQuota: 150000, CPUWeight: 100,
	CpusetCPUs: "0-1", CpusetMems: "0", Pids: 32, IOWeight: 100,
	Devices: []DeviceRule{{'c', 1, 3, "rwm"}, {'c', 136, -1, "rwm"}},
}

func v1Tree(t *testing.T) map[string]string {
	root := t.TempDir()
	return map[string]string{
		"memory":  fakeDir(t, root+"/memory", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
		"cpu":     fakeDir(t, root+"/cpu", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"),
		"cpuset":  fakeDir(t, root+"/cpuset", "cpuset.cpus", "cpuset.mems"),
		"pids":    fakeDir(t, root+"/pids", "pids.max"),
		"blkio":   fakeDir(t, root+"/blkio", "blkio.weight"),
		"devices": fakeDir(t, root+"/devices", "devices.allow", "devices.deny"),
	}
}

func TestPlanV1(t *testing.T) {
	dirs := v1Tree(t)
	ws, err := PlanV1(dirs, &allLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"memory/memory.limit_in_bytes=67108864",
		"memory/memory.memsw.limit_in_bytes=67108864",
		"cpu/cpu.cfs_period_us=100000",
		"cpu/cpu.cfs_quota_us=150000",
		"cpu/cpu.shares=2597",
		"cpuset/cpuset.cpus=0-1",
		"cpuset/cpuset.mems=0",
		"pids/pids.max=32",
		"blkio/blkio.weight=19",
		"devices/devices.deny=a",
		"devices/devices.allow=c 1:3 rwm",
		"devices/devices.allow=c 136:* rwm",
	}
	if got := strs(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("PlanV1:\n got %q\nwant %q", got, want)
	}
	if err := ApplyV1(dirs, &Limits{Memory: 32 << 20, Pids: -1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dirs["memory"], "memory.limit_in_bytes"); got != "33554432" {
		t.Errorf("memory.limit_in_bytes = %q", got)
	}
	if got := read(t, dirs["pids"], "pids.max"); got != "max" {
		t.Errorf("pids.max = %q", got)
	}
	if got := read(t, dirs["cpu"], "cpu.shares"); got != "" {
		t.Errorf("cpu.shares written without a limit: %q", got)
	}
}

func TestPlanV1NothingAsked(t *testing.T) {
	ws, err := PlanV1(map[string]string{}, &Limits{})
	if err != nil || len(ws) != 0 {
		t.Errorf("no limits: %q, %v", strs(ws), err)
	}
}

func TestPlanV1MissingController(t *testing.T) {
	dirs := v1Tree(t)
	delete(dirs, "pids")
	_, err := PlanV1(dirs, &Limits{Pids: 10})
	if err == nil || err.Error() != "controller pids: not mounted (cgroup v1)" {
		t.Errorf("missing pids controller: %v", err)
	}
	os.Remove(filepath.Join(dirs["blkio"], "blkio.weight"))
	if _, err := PlanV1(dirs, &Limits{IOWeight: 10}); err == nil || !strings.Contains(err.Error(), "blkio") {
		t.Errorf("missing blkio.weight: %v", err)
	}
	os.Remove(filepath.Join(dirs["memory"], "memory.memsw.limit_in_bytes"))
	if _, err := PlanV1(dirs, &Limits{Memory: 1 << 20, MemorySwap: 1 << 20}); err == nil || !strings.Contains(err.Error(), "swap") {
		t.Errorf("missing memsw: %v", err)
	}
}

func TestApplyV1MissingFile(t *testing.T) {
	dirs := v1Tree(t)
	os.Remove(filepath.Join(dirs["cpu"], "cpu.cfs_quota_us"))
	if err := ApplyV1(dirs, &Limits{CPUQuota: 50000}, nil); err == nil || !strings.Contains(err.Error(), "cpu.cfs_quota_us") {
		t.Errorf("write to a missing control file: %v", err)
	}
}

func TestPlanV2(t *testing.T) {
	dir := "/cg/c1"
	want := []string{
		"c1/memory.max=67108864",
		"c1/memory.swap.max=0",
		"c1/cpu.max=150000 100000",
		"c1/cpu.weight=100",
		"c1/cpuset.cpus=0-1",
		"c1/cpuset.mems=0",
		"c1/pids.max=32",
		"c1/io.weight=default 100",
	}
	if got := strs(must(PlanV2(dir, &allLimits))); !reflect.DeepEqual(got, want) {
		t.Errorf("PlanV2:\n got %q\nwant %q", got, want)
	}
	got := strs(must(PlanV2(dir, &Limits{Memory: 1 << 30, MemorySwap: 3 << 30})))
	if !reflect.DeepEqual(got, []string{"c1/memory.max=1073741824", "c1/memory.swap.max=2147483648"}) {
		t.Errorf("PlanV2 with swap: %q", got)
	}
	got = strs(must(PlanV2(dir, &Limits{Memory: -1, MemorySwap: -1, Pids: -1})))
	if !reflect.DeepEqual(got, []string{"c1/memory.max=max", "c1/memory.swap.max=max", "c1/pids.max=max"}) {
		t.Errorf("PlanV2 unlimited: %q", got)
	}
}

func TestApplyV2(t *testing.T) {
	root := t.TempDir()
	parent := fakeDir(t, root+"/barco", "cgroup.controllers", "cgroup.subtree_control")
	os.WriteFile(parent+"/cgroup.controllers", []byte("cpuset cpu io memory pids\n"), 0o644)
	l := &Limits{Memory: 32 << 20, Pids: 16}
	if err := EnableControllers(parent, root, l.Controllers()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, parent, "cgroup.subtree_control"); got != "+memory +pids" {
		t.Errorf("subtree_control = %q", got)
	}
	dir := fakeDir(t, parent+"/c1", "cgroup.controllers", "memory.max", "pids.max")
	os.WriteFile(dir+"/cgroup.controllers", []byte("memory pids\n"), 0o644)
	if err := ApplyV2(dir, l, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir, "memory.max") + " " + read(t, dir, "pids.max"); got != "33554432 16" {
		t.Errorf("memory.max pids.max = %q", got)
	}
	err := ApplyV2(dir, &Limits{CPUWeight: 5}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "controller cpu: not delegated") || !strings.Contains(err.Error(), "cgroup v2") {
		t.Errorf("ApplyV2 without the cpu controller: %v", err)
	}
}

func TestEnableControllers(t *testing.T) {
	root := fakeDir(t, t.TempDir(), "cgroup.controllers", "cgroup.subtree_control")
	os.WriteFile(root+"/cgroup.controllers", []byte("cpu memory pids\n"), 0o644)
	// The root's subtree_control is the machine's: read, never written.
	err := EnableControllers(root, root, []string{"memory"})
	if err == nil || !strings.Contains(err.Error(), "controller memory") {
		t.Errorf("enable in the root: %v", err)
	}
	os.WriteFile(root+"/cgroup.subtree_control", []byte("memory\n"), 0o644)
	if err := EnableControllers(root, root, []string{"memory"}); err != nil {
		t.Errorf("already enabled in the root: %v", err)
	}
	if got := read(t, root, "cgroup.subtree_control"); got != "memory\n" {
		t.Errorf("root subtree_control changed to %q", got)
	}
	parent := fakeDir(t, root+"/barco", "cgroup.controllers", "cgroup.subtree_control")
	os.WriteFile(parent+"/cgroup.controllers", []byte("memory\n"), 0o644)
	err = EnableControllers(parent, root, []string{"memory", "io"})
	if err == nil || !strings.HasPrefix(err.Error(), "controller io: not delegated to "+parent+" (cgroup v2") {
		t.Errorf("enable io that is not delegated: %v", err)
	}
}

func TestDeviceRules(t *testing.T) {
	for _, s := range []string{"c 10:200 rwm", "b 8:* r", "a *:* m", "c 136:* rwm"} {
		r, err := ParseDeviceRule(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseDeviceRule(%q) = %v, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "c 10:200", "x 1:3 rwm", "c 1 rwm", "c a:3 rwm", "c 1:3 rwx", "c 1:3 "} {
		if _, err := ParseDeviceRule(s); err == nil {
			t.Errorf("ParseDeviceRule(%q): want an error", s)
		}
	}
	var got []string
	for _, r := range DefaultDevices {
		got = append(got, r.String())
	}
	want := "c *:* m,b *:* m,c 1:3 rwm,c 1:5 rwm,c 1:7 rwm,c 1:8 rwm,c 1:9 rwm,c 5:0 rwm,c 5:2 rwm,c 136:* rwm"
	if strings.Join(got, ",") != want {
		t.Errorf("DefaultDevices = %s", strings.Join(got, ","))
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{64 << 20: "64M", 1 << 30: "1G", 1536: "1536", 3 << 10: "3K", 5<<20 + 1: "5.0M", 100: "100"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// v1 reads any devices.allow line that starts with "a" as "every device,
// every access": a rule of type a goes in as one rule per type.
func TestPlanV1DeviceRuleOfBothTypes(t *testing.T) {
	dirs := v1Tree(t)
	ws, err := PlanV1(dirs, &Limits{Devices: []DeviceRule{{Type: 'a', Major: 1, Minor: 11, Access: "r"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"devices/devices.deny=a", "devices/devices.allow=c 1:11 r", "devices/devices.allow=b 1:11 r"}
	if got := strs(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("PlanV1:\n got %q\nwant %q", got, want)
	}
}

// An OCI config's exact cpu.shares and CFS period reach v1 as given, and
// v2 converted.
func TestPlanCPUSharesAndPeriod(t *testing.T) {
	l := &Limits{CPUShares: 1024, CPUQuota: 20000, CPUPeriod: 5000}
	ws, err := PlanV1(map[string]string{"cpu": "/c"}, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strs(ws), " "); !strings.Contains(got, "cpu.cfs_period_us=5000") || !strings.Contains(got, "cpu.cfs_quota_us=20000") || !strings.Contains(got, "cpu.shares=1024") {
		t.Errorf("PlanV1: %s", got)
	}
	if got := strings.Join(strs(must(PlanV2("/c", l))), " "); !strings.Contains(got, "cpu.max=20000 5000") || !strings.Contains(got, "cpu.weight=39") {
		t.Errorf("PlanV2: %s", got)
	}
}

func must(ws []Write, err error) []Write {
	if err != nil {
		panic(err)
	}
	return ws
}

// The memory soft limit on both versions; swappiness and the OOM switch
// on v1 only.
func TestMemoryReservationSwappinessOOM(t *testing.T) {
	sw := uint64(10)
	l := &Limits{MemoryReservation: 32 << 20, MemorySwappiness: &sw, OOMKillDisable: true}
	dir := "/sys/fs/cgroup/memory/c"
	got, err := PlanV1(map[string]string{"memory": dir}, l)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"c/memory.soft_limit_in_bytes=33554432", "c/memory.swappiness=10", "c/memory.oom_control=1"}
	if !reflect.DeepEqual(strs(got), want) {
		t.Errorf("PlanV1 = %q, want %q", strs(got), want)
	}
	if _, err := PlanV2(dir, l); err == nil {
		t.Error("PlanV2 took swappiness")
	}
	if got := strs(must(PlanV2(dir, &Limits{MemoryReservation: 32 << 20}))); !reflect.DeepEqual(got, []string{"c/memory.low=33554432"}) {
		t.Errorf("PlanV2 = %q", got)
	}
}
