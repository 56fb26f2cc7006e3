package chain

import (
	"fmt"
	"os"
	"strings"
)

// SysctlEnv names the sysctls, "key=value" a line, that the first process
// inside barco-ns's namespaces sets there (barco-ns --sysctl): /proc/sys
// shows the namespaces of the process that writes it.
const SysctlEnv = "BARCO_NS_SYSCTL"

// namespacedSysctls are the prefixes of the sysctls a namespace of the
// container's own holds, as runc allows them: anything else is the host's.
var namespacedSysctls = []string{"net.", "fs.mqueue.", "kernel.shm", "kernel.msg", "kernel.sem"}

// CheckSysctl refuses a setting that is not KEY=VALUE of a namespaced
// sysctl, or whose key could leave /proc/sys.
func CheckSysctl(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" || strings.ContainsAny(k, "/\n") || strings.Contains(k, "..") || strings.Contains(v, "\n") {
		return fmt.Errorf("sysctl %q: want KEY=VALUE", kv)
	}
	for _, p := range namespacedSysctls {
		if strings.HasPrefix(k, p) {
			return nil
		}
	}
	return fmt.Errorf("sysctl %s: not one a namespace of the container's own holds (%s)", k, strings.Join(namespacedSysctls, ", "))
}

func applySysctls(kvs []string) error {
	for _, kv := range kvs {
		if err := CheckSysctl(kv); err != nil {
			return err
		}
		k, v, _ := strings.Cut(kv, "=")
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	return nil
}
