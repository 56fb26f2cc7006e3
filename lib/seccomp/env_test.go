package seccomp

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// capsFromStatus reads a capability set from /proc/self/status ("CapPrm",
// "CapBnd"), the kernel's own account, to check readCaps against.
func capsFromStatus(t *testing.T, field string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k != field {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		var caps []string
		for i, name := range capNames {
			if mask&(1<<i) != 0 {
				caps = append(caps, name)
			}
		}
		return caps
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return nil
}

func TestHostEnvCapabilities(t *testing.T) {
	for set, field := range map[CapSet]string{Permitted: "CapPrm", Bounding: "CapBnd"} {
		env, err := HostEnv(set)
		if err != nil {
			t.Fatal(err)
		}
		if want := capsFromStatus(t, field); !slices.Equal(env.Caps, want) {
			t.Errorf("%s set: %q, /proc/self/status %s says %q", set, env.Caps, field, want)
		}
		if env.Arch == "" || env.Kernel.Kernel == 0 {
			t.Errorf("env %+v", env)
		}
	}
}

func TestCapNumber(t *testing.T) {
	if CapNumber("CAP_SYS_ADMIN") != 21 || CapNumber("CAP_CHECKPOINT_RESTORE") != 40 || CapNumber("SYS_ADMIN") != -1 {
		t.Error("capability numbers differ from linux/capability.h")
	}
}
