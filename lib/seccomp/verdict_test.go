package seccomp

import (
	"runtime"
	"strings"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func amd64Env(caps ...string) Env {
	return Env{Arch: "amd64", Kernel: KernelVersion{Kernel: 6, Major: 1}, Caps: append(append([]string{}, dockerCaps...), caps...)}
}

// program is the BPF barco loads for f.
func program(t *testing.T, f *Filter) []bpfInsn {
	t.Helper()
	p, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	prog := make([]bpfInsn, len(p.Instructions))
	for i, in := range p.Instructions {
		prog[i] = bpfInsn{in.Code, in.Jt, in.Jf, in.K}
	}
	return prog
}

// reference is the BPF libseccomp makes of f, as runc would load it.
func reference(t *testing.T, f *Filter) []bpfInsn {
	t.Helper()
	c, err := compileLibseccomp(f, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	raw, err := c.ExportBPF()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := decodeBPF(raw)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// Audit architectures (linux/audit.h) and the x32 syscall bit.
const (
	auditX86_64  = 0xc000003e
	auditI386    = 0x40000003
	auditAArch64 = 0xc00000b7
)

var scmpArches = map[string]libseccomp.ScmpArch{"amd64": libseccomp.ArchAMD64, "x86": libseccomp.ArchX86, "x32": libseccomp.ArchX32}

// call runs one syscall record through prog: name on arch ("amd64", "x86"
// or "x32") with args.
func call(t *testing.T, prog []bpfInsn, arch, name string, args ...uint64) uint32 {
	t.Helper()
	nr, err := libseccomp.GetSyscallFromNameByArch(name, scmpArches[arch])
	if err != nil {
		t.Fatalf("syscall %s on %s: %v", name, arch, err)
	}
	d := seccompData{nr: int32(nr), arch: auditX86_64}
	if arch == "x86" {
		d.arch = auditI386
	}
	copy(d.args[:], args)
	ret, err := runBPF(prog, d.bytes())
	if err != nil {
		t.Fatalf("%s(%#x) on %s: %v", name, args, arch, err)
	}
	return ret
}

func requireAMD64(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("syscall records are crafted for amd64")
	}
}

var (
	allow  = uint32(retAllowValue)
	eperm  = uint32(retErrnoValue | uint32(unix.EPERM))
	enosys = uint32(retErrnoValue | uint32(unix.ENOSYS))
)

func TestDefaultProfileVerdicts(t *testing.T) {
	requireAMD64(t)
	f, err := Resolve(DefaultProfile(), amd64Env())
	if err != nil {
		t.Fatal(err)
	}
	prog := program(t, f)
	cases := []struct {
		arch, name string
		args       []uint64
		want       uint32
	}{
		{"amd64", "read", nil, allow},
		{"amd64", "execve", nil, allow},
		{"amd64", "clone", []uint64{uint64(unix.SIGCHLD) | unix.CLONE_VM | unix.CLONE_VFORK}, allow},
		{"amd64", "clone", []uint64{uint64(unix.SIGCHLD) | unix.CLONE_NEWUSER}, eperm},
		{"amd64", "clone", []uint64{uint64(unix.SIGCHLD) | unix.CLONE_NEWNS}, eperm},
		{"amd64", "clone3", nil, enosys},
		{"amd64", "unshare", []uint64{unix.CLONE_NEWUSER}, eperm},
		{"amd64", "setns", nil, eperm},
		{"amd64", "mount", nil, eperm},
		{"amd64", "umount2", nil, eperm},
		{"amd64", "keyctl", nil, eperm},
		{"amd64", "add_key", nil, eperm},
		{"amd64", "request_key", nil, eperm},
		{"amd64", "reboot", nil, eperm},
		{"amd64", "bpf", nil, eperm},
		{"amd64", "ptrace", nil, allow}, // kernel >= 4.8
		{"amd64", "chroot", nil, allow}, // CAP_SYS_CHROOT is in Docker's set
		{"amd64", "socket", []uint64{unix.AF_INET, unix.SOCK_STREAM}, allow},
		{"amd64", "socket", []uint64{unix.AF_UNIX}, allow},
		{"amd64", "socket", []uint64{unix.AF_NETLINK}, allow},
		{"amd64", "socket", []uint64{unix.AF_ALG}, eperm},
		{"amd64", "socket", []uint64{unix.AF_VSOCK}, eperm},
		// The comparison is on all 64 bits.
		{"amd64", "socket", []uint64{1<<32 | unix.AF_INET}, eperm},
		{"amd64", "personality", []uint64{0}, allow},
		{"amd64", "personality", []uint64{0xffffffff}, allow},
		{"amd64", "personality", []uint64{0x0040000}, eperm}, // ADDR_NO_RANDOMIZE
		{"amd64", "arch_prctl", nil, allow},
		{"x86", "read", nil, allow},
		{"x86", "socketcall", nil, allow},
		{"x86", "mount", nil, eperm},
		{"x86", "clone", []uint64{unix.CLONE_NEWUSER}, eperm},
		{"x32", "read", nil, allow},
		{"x32", "unshare", nil, eperm},
	}
	for _, c := range cases {
		if got := call(t, prog, c.arch, c.name, c.args...); got != c.want {
			t.Errorf("%s %s(%#x) = %#x, want %#x", c.arch, c.name, c.args, got, c.want)
		}
	}
	// A syscall from an architecture outside the filter kills (libseccomp's
	// bad-architecture action).
	d := seccompData{nr: 0, arch: auditAArch64}
	if ret, err := runBPF(prog, d.bytes()); err != nil || ret&0xffff0000 != retKillThreadValue {
		t.Errorf("aarch64 syscall = %#x, %v; want kill", ret, err)
	}
}

// The groups that capabilities unlock, and the kernel condition.
func TestDefaultProfileConditionalGroups(t *testing.T) {
	requireAMD64(t)
	admin := program(t, mustResolve(t, DefaultProfile(), amd64Env("CAP_SYS_ADMIN")))
	for _, name := range []string{"mount", "umount2", "unshare", "setns", "clone3"} {
		if got := call(t, admin, "amd64", name); got != allow {
			t.Errorf("with CAP_SYS_ADMIN: %s = %#x, want allow", name, got)
		}
	}
	if got := call(t, admin, "amd64", "clone", unix.CLONE_NEWUSER); got != allow {
		t.Errorf("with CAP_SYS_ADMIN: clone(CLONE_NEWUSER) = %#x, want allow", got)
	}
	if got := call(t, admin, "amd64", "reboot"); got != eperm {
		t.Errorf("with CAP_SYS_ADMIN only: reboot = %#x, want EPERM", got)
	}
	boot := program(t, mustResolve(t, DefaultProfile(), amd64Env("CAP_SYS_BOOT")))
	if got := call(t, boot, "amd64", "reboot"); got != allow {
		t.Errorf("with CAP_SYS_BOOT: reboot = %#x, want allow", got)
	}
	env := amd64Env()
	env.Caps = nil // not even CAP_SYS_CHROOT
	env.Kernel = KernelVersion{Kernel: 4, Major: 7}
	old := program(t, mustResolve(t, DefaultProfile(), env))
	for _, name := range []string{"ptrace", "chroot"} {
		if got := call(t, old, "amd64", name); got != eperm {
			t.Errorf("kernel 4.7, no caps: %s = %#x, want EPERM", name, got)
		}
	}
}

func mustResolve(t *testing.T, p *Profile, env Env) *Filter {
	t.Helper()
	f, err := Resolve(p, env)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCustomProfileVerdicts(t *testing.T) {
	requireAMD64(t)
	p, err := ParseProfile([]byte(`{
		"defaultAction": "SCMP_ACT_ALLOW",
		"architectures": ["SCMP_ARCH_X86_64"],
		"syscalls": [
			{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
			{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
			{"names": ["getppid"], "action": "SCMP_ACT_KILL"},
			{"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
			{"names": ["getgid"], "action": "SCMP_ACT_LOG"},
			{"names": ["geteuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
			{"names": ["getegid"], "action": "SCMP_ACT_ERRNO"},
			{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
			 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 1, "op": "SCMP_CMP_LE"}]},
			{"names": ["write"], "action": "SCMP_ACT_ERRNO",
			 "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_GT"}, {"index": 0, "value": 50, "op": "SCMP_CMP_EQ"}]},
			{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
			 "args": [{"index": 1, "value": 255, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	prog := program(t, mustResolve(t, p, amd64Env()))
	cases := []struct {
		name string
		args []uint64
		want uint32
	}{
		{"mkdir", nil, retErrnoValue | uint32(unix.EACCES)},
		{"mkdirat", nil, retErrnoValue | uint32(unix.EACCES)},
		{"rmdir", nil, allow},
		{"getpid", nil, retKillProcessValue},
		{"getppid", nil, retKillThreadValue},
		{"getuid", nil, retTrapValue},
		{"getgid", nil, retLogValue},
		{"geteuid", nil, retTraceValue | 7},
		{"getegid", nil, eperm},
		// Different arguments: AND.
		{"kill", []uint64{1, 9}, eperm},
		{"kill", []uint64{2, 9}, allow},
		{"kill", []uint64{1, 15}, allow},
		// The same argument twice: OR, as runc.
		{"write", []uint64{50}, eperm},
		{"write", []uint64{101}, eperm},
		{"write", []uint64{1}, allow},
		{"ioctl", []uint64{0, 0x1107}, eperm},
		{"ioctl", []uint64{0, 0x1108}, allow},
	}
	for _, c := range cases {
		if got := call(t, prog, "amd64", c.name, c.args...); got != c.want {
			t.Errorf("%s(%#x) = %#x, want %#x", c.name, c.args, got, c.want)
		}
	}
}

func TestUnknownSyscallIsSkipped(t *testing.T) {
	f := &Filter{Default: Action{Kind: ActAllow}, Arches: []string{"amd64"}, Rules: []Rule{
		{Syscall: "no_such_syscall", Action: Action{Kind: ActErrno, Ret: 1}},
		{Syscall: "mkdir", Action: Action{Kind: ActErrno, Ret: 1}},
	}}
	p, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Skipped) != 1 || p.Skipped[0] != "no_such_syscall" {
		t.Errorf("skipped %q, want [no_such_syscall]", p.Skipped)
	}
}

// Architectures barco has no code generator for cannot occur on a machine
// whose native one it has; they are left out. An unsupported native one is
// an error.
func TestForeignArchitecturesLeftOut(t *testing.T) {
	f := &Filter{Default: Action{Kind: ActErrno, Ret: 1}, Arches: []string{"amd64", "x86", "ppc64le", "s390x"},
		Rules: []Rule{{Syscall: "read", Action: Action{Kind: ActAllow}}}}
	p, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.IgnoredArches, " ") != "ppc64le s390x" {
		t.Errorf("ignored %q, want ppc64le s390x", p.IgnoredArches)
	}
	f.Arches = []string{"s390x", "amd64"}
	if _, err := Compile(f); err == nil || !strings.Contains(err.Error(), "architecture s390x") {
		t.Errorf("native s390x: error %v", err)
	}
}

// Of two unconditional rules for one syscall, the first counts, as in
// libseccomp: podman's profile allows setns, then denies it.
func TestFirstUnconditionalRuleCounts(t *testing.T) {
	requireAMD64(t)
	f := &Filter{Default: Action{Kind: ActErrno, Ret: 38}, Arches: []string{"amd64"}, Rules: []Rule{
		{Syscall: "setns", Action: Action{Kind: ActAllow}},
		{Syscall: "mkdir", Action: Action{Kind: ActErrno, Ret: 1}},
		{Syscall: "setns", Action: Action{Kind: ActErrno, Ret: 1}},
		{Syscall: "mkdir", Action: Action{Kind: ActErrno, Ret: 13}},
	}}
	prog, ref := program(t, f), reference(t, f)
	for _, c := range []struct {
		name string
		want uint32
	}{{"setns", allow}, {"mkdir", eperm}} {
		if got, lib := call(t, prog, "amd64", c.name), call(t, ref, "amd64", c.name); got != c.want || lib != c.want {
			t.Errorf("%s: barco %#x, libseccomp %#x, want %#x", c.name, got, lib, c.want)
		}
	}
}

func TestAssembleRefuses(t *testing.T) {
	// Masked comparisons are checked rule by rule: six instructions each.
	long := &Filter{Default: Action{Kind: ActAllow}, Arches: []string{"amd64"}}
	for i := range 1500 {
		long.Rules = append(long.Rules, Rule{Syscall: "kill", Action: Action{Kind: ActErrno, Ret: 1},
			Args: []Arg{{Index: 0, Op: OpMaskedEQ, Value: uint64(i), ValueTwo: uint64(i)}}})
	}
	if _, err := Compile(long); err == nil || !strings.Contains(err.Error(), "the kernel takes at most 4096") {
		t.Errorf("1500 masked conditional rules: error %v", err)
	}
}

// Syscalls newer than the profile get ENOSYS, so that programs fall back
// to older calls, where the default action denies; not where it allows.
func TestNewerSyscallsGetENOSYS(t *testing.T) {
	requireAMD64(t)
	f := mustResolve(t, DefaultProfile(), amd64Env())
	p, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	last := p.LastSyscalls["amd64"]
	if last < unix.SYS_FUTEX_WAITV || last >= 1000 {
		t.Fatalf("last amd64 syscall %d", last)
	}
	prog := program(t, f)
	for _, c := range []struct {
		arch uint32
		nr   uint32
		want uint32
	}{
		{auditX86_64, last + 1, enosys},
		{auditX86_64, 1000, enosys},
		{auditX86_64, x32SyscallBit | 1000, enosys},
		{auditI386, 1000, enosys},
		{auditX86_64, unix.SYS_KEYCTL, eperm}, // below: still EPERM
		{auditX86_64, 335, eperm},             // a hole below the last one
	} {
		d := seccompData{nr: int32(c.nr), arch: c.arch}
		if got, err := runBPF(prog, d.bytes()); err != nil || got != c.want {
			t.Errorf("arch %#x nr %d: %#x, %v; want %#x", c.arch, c.nr, got, err, c.want)
		}
	}
	allowing := program(t, &Filter{Default: Action{Kind: ActAllow}, Arches: []string{"amd64"},
		Rules: []Rule{{Syscall: "mkdir", Action: Action{Kind: ActErrno, Ret: 1}}}})
	d := seccompData{nr: 1000, arch: auditX86_64}
	if got, _ := runBPF(allowing, d.bytes()); got != allow {
		t.Errorf("default allow: nr 1000 = %#x, want allow", got)
	}
}

// Assemble takes any table: numbers outside the generated tables' ranges
// (sorted another way) give the same program shape, shifted.
func TestAssembleOtherNumbers(t *testing.T) {
	f := mustResolve(t, DefaultProfile(), amd64Env())
	f.Arches = []string{"amd64"}
	const shift = 100000
	shifted := func(arch, name string) (int32, bool) {
		nr, ok := BuiltinTable(arch, name)
		return nr + shift, ok && nr >= 0
	}
	p, err := Assemble(f, shifted)
	if err != nil {
		t.Fatal(err)
	}
	ours, want := asVM(p.Instructions), program(t, f)
	for nr := uint32(0); nr < 560; nr++ {
		for _, args := range argVectors() {
			d, e := seccompData{nr: int32(nr), arch: auditX86_64, args: args}, seccompData{nr: int32(nr + shift), arch: auditX86_64, args: args}
			got, err1 := runBPF(ours, e.bytes())
			w, err2 := runBPF(want, d.bytes())
			if err1 != nil || err2 != nil || got != w {
				t.Fatalf("nr %d+%d args %#x: %#x, %v; want %#x, %v", nr, shift, args[:2], got, err1, w, err2)
			}
		}
	}
}
