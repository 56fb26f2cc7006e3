package ns

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A namespaced sysctl is set only in a namespace of the container's own:
// never the host's.
func TestSysctlNeedsItsNamespace(t *testing.T) {
	for _, c := range []struct {
		flags uintptr
		kv    string
		want  string
	}{
		{unix.CLONE_NEWPID, "net.ipv4.ip_forward=1", "new network namespace"},
		{unix.CLONE_NEWNET, "kernel.shmmax=1", "new IPC namespace"},
		{unix.CLONE_NEWNET, "net.ipv4.ip_forward=1", ""},
		{unix.CLONE_NEWIPC, "fs.mqueue.msg_max=20", ""},
	} {
		err := (&Config{Flags: c.flags, Sysctls: []string{c.kv}, Program: []string{"true"}, UID: -1, GID: -1}).Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s with flags %#x: %v, want %q", c.kv, c.flags, err, c.want)
		}
	}
}
