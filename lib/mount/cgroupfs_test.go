package mount

import (
	"reflect"
	"testing"
)

func TestCgroupMounts(t *testing.T) {
	for _, tc := range []struct {
		name, procCgroup string
		want             []cgroupMount
	}{
		{"unified", "0::/\n", []cgroupMount{{fstype: "cgroup2", clone: -1}}},
		{"hybrid", "9:name=systemd:/\n8:pids:/\n2:cpu,cpuacct:/\n0::/\n", []cgroupMount{
			{dir: "systemd", fstype: "cgroup", data: "none,name=systemd", path: "/", clone: -1},
			{dir: "pids", fstype: "cgroup", data: "pids", path: "/", clone: -1},
			{dir: "cpu,cpuacct", fstype: "cgroup", data: "cpu,cpuacct", links: []string{"cpu", "cpuacct"}, path: "/", clone: -1},
			{dir: "unified", fstype: "cgroup2", clone: -1},
		}},
		{"legacy", "3:memory:/x\n", []cgroupMount{{dir: "memory", fstype: "cgroup", data: "memory", path: "/x", clone: -1}}},
	} {
		got, err := cgroupMounts(tc.procCgroup)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := cgroupMounts(""); err == nil {
		t.Error("no hierarchy: no error")
	}
}
