package wrapper

import (
	"reflect"
	"strings"
	"testing"
)

// An unprivileged caller's chain: no idmap, no device rules, and the
// default pids limit only where a cgroup is delegated to it.
func TestRootlessChain(t *testing.T) {
	s := parseRun(t, "--rootfs", "/srv/r", "--", "true")
	s.Rootless = true
	stages, err := s.Stages()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"barco-cgroup"}; !reflect.DeepEqual(stages[0], want) {
		t.Errorf("no delegated cgroup: %q, want %q", stages[0], want)
	}
	if want := []string{"barco-ns", "-U", "-p", "-m", "-u", "-i", "-C", "-T", "-n", "--hostname", "barco"}; !reflect.DeepEqual(stages[1], want) {
		t.Errorf("barco-ns: %q, want %q", stages[1], want)
	}
	if want := []string{"barco-mount", "--rootfs", "/srv/r", "--cgroupfs", "--overlay", "--hosts", "barco"}; !reflect.DeepEqual(stages[2], want) {
		t.Errorf("barco-mount: %q, want %q", stages[2], want)
	}
	s.RootlessCgroup = true
	if stages, _ := s.Stages(); !reflect.DeepEqual(stages[0], []string{"barco-cgroup", "--pids", DefaultPidsLimit}) {
		t.Errorf("a delegated cgroup: %q", stages[0])
	}
	s = parseRun(t, "--memory", "64M", "--pids-limit", "10", "true")
	s.Rootless = true
	if stages, _ := s.Stages(); !reflect.DeepEqual(stages[0], []string{"barco-cgroup", "--memory", "64M", "--pids", "10"}) {
		t.Errorf("limits asked: %q", stages[0])
	}
}

func TestRootlessRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-userns", "true"}, "--no-userns: an unprivileged caller's container needs a user namespace, whose root is the caller"},
		{[]string{"-v", "/tmp:/mnt:ro,idmap", "true"}, "--volume /tmp:/mnt:ro,idmap: an idmapped volume needs root (only root may idmap a disk filesystem)"},
	} {
		s := parseRun(t, tc.args...)
		s.Rootless = true
		if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
