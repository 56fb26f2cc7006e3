package cgroup

import (
	"strings"
	"testing"
)

// The directories a process must join to be where the one whose
// /proc/PID/cgroup was read is: v2's and every v1 hierarchy's.
func TestOwnDirs(t *testing.T) {
	l := detect(t, "hybrid")
	dirs := l.OwnDirs()
	if len(dirs) != 9 || dirs[0] != "/sys/fs/cgroup/unified" {
		t.Fatalf("hybrid: %q, want v2's first and the 8 v1 hierarchies", dirs)
	}
	found := false
	for _, d := range dirs {
		found = found || d == "/sys/fs/cgroup/memory/process_api/ed0e"
	}
	if !found {
		t.Errorf("hybrid: no memory directory in %q", dirs)
	}
	l = detect(t, "unified")
	if dirs := l.OwnDirs(); len(dirs) != 1 || dirs[0] != "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope" {
		t.Errorf("unified: %q", dirs)
	}
}

func TestJoinOnly(t *testing.T) {
	o := Options{Parent: OwnParent()}
	if err := o.JoinOnly(false); err != nil {
		t.Errorf("--join alone: %v", err)
	}
	for name, bad := range map[string]Options{
		"limit":  {Parent: OwnParent(), Limits: Limits{Memory: 1 << 30}},
		"stats":  {Parent: OwnParent(), Stats: true},
		"name":   {Parent: OwnParent(), Name: "x"},
		"parent": {Parent: "/elsewhere", parentGiven: true},
	} {
		if err := bad.JoinOnly(false); err == nil || !strings.Contains(err.Error(), "--join") {
			t.Errorf("--join with %s: %v", name, err)
		}
	}
	if err := o.JoinOnly(true); err == nil {
		t.Error("--join with --exec accepted")
	}
	if _, err := ParseJoinDir("relative/dir"); err == nil {
		t.Error("a relative --join DIR accepted")
	}
	if _, err := ParseJoinDir("/tmp"); err == nil || !strings.Contains(err.Error(), "not a cgroup directory") {
		t.Errorf("--join /tmp: %v", err)
	}
}
