package seccomp

import (
	"barco/lib/chain"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"barco/lib/creds"
	"golang.org/x/sys/unix"
)

// capNames are the kernel's capability names by number (capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapNumber is the number of a capability name, or -1.
func CapNumber(name string) int {
	for i, n := range capNames {
		if n == name {
			return i
		}
	}
	return -1
}

// nativeArch is libseccomp's name of a GOARCH.
func nativeArch(goarch string) (string, bool) {
	switch goarch {
	case "386":
		return "x86", true
	case "amd64", "arm", "arm64", "ppc64", "ppc64le", "riscv64", "s390x", "mips", "mips64":
		return goarch, true
	case "loong64":
		return "loongarch64", true
	case "mipsle":
		return "mipsel", true
	case "mips64le":
		return "mipsel64", true
	}
	return "", false
}

// CapSet says which capability set the conditions are evaluated against.
type CapSet int

const (
	// Permitted is what PROGRAM can ever hold when no_new_privs is set.
	Permitted CapSet = iota
	// Bounding is what PROGRAM may gain through setuid or file
	// capabilities when no_new_privs is not set; Docker's choice.
	Bounding
)

func (s CapSet) String() string {
	if s == Bounding {
		return "bounding"
	}
	return "permitted"
}

// HostEnv reads the running process's capabilities (from set), the
// running kernel's version and the native architecture.
func HostEnv(set CapSet) (Env, error) {
	return hostEnv(func() ([]string, error) { return readCaps(set) })
}

// ChildEnv is HostEnv for a child that will hold the capability sets of
// st (see chain.Inline), not this process's.
func ChildEnv(set CapSet, st *chain.ChildState) (Env, error) {
	return hostEnv(func() ([]string, error) {
		mask := st.Permitted
		if set == Bounding {
			mask = st.Bounding
		}
		var caps []string
		for i, name := range capNames {
			if i < 64 && mask&(1<<uint(i)) != 0 {
				caps = append(caps, name)
			}
		}
		return caps, nil
	})
}

func hostEnv(readCaps func() ([]string, error)) (Env, error) {
	var env Env
	arch, ok := nativeArch(runtime.GOARCH)
	if !ok {
		return env, fmt.Errorf("architecture %s: not supported", runtime.GOARCH)
	}
	env.Arch = arch
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return env, fmt.Errorf("uname: %w", err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	k, err := ParseKernelRelease(release)
	if err != nil {
		return env, err
	}
	env.Kernel = k
	caps, err := readCaps()
	if err != nil {
		return env, err
	}
	env.Caps = caps
	return env, nil
}

// ParseKernelRelease reads "<kernel>.<major>" from a uname release such as
// "6.1.0-18-amd64"; the rest does not count, as in Docker. By hand: the
// scanner of fmt takes longer than the rest of HostEnv.
func ParseKernelRelease(release string) (KernelVersion, error) {
	kernel, rest, dot := strings.Cut(release, ".")
	n := 0
	for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
		n++
	}
	var k KernelVersion
	var err1, err2 error
	k.Kernel, err1 = strconv.ParseUint(kernel, 10, 64)
	k.Major, err2 = strconv.ParseUint(rest[:n], 10, 64)
	if !dot || err1 != nil || err2 != nil {
		return KernelVersion{}, fmt.Errorf("kernel release %q: not <kernel>.<major>", release)
	}
	return k, nil
}

func readCaps(set CapSet) ([]string, error) {
	var caps []string
	if set == Bounding {
		for i, name := range capNames {
			in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0)
			if err != nil {
				// EINVAL: a capability this kernel does not have.
				continue
			}
			if in == 1 {
				caps = append(caps, name)
			}
		}
		return caps, nil
	}
	sets, err := creds.Get()
	if err != nil {
		return nil, err
	}
	for i, name := range capNames {
		if sets.Permitted&(1<<uint(i)) != 0 {
			caps = append(caps, name)
		}
	}
	return caps, nil
}

// String is the Env as --print's header shows it.
func (e Env) String() string {
	caps := strings.Join(e.Caps, ",")
	if caps == "" {
		caps = "none"
	}
	return fmt.Sprintf("arch %s, kernel %s, caps %s", e.Arch, e.Kernel.String(), caps)
}
