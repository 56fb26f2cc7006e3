package seccomp

import (
	"maps"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// argVectors are the syscall arguments the differential test tries: the
// values the default profile's conditions turn on, their neighbours, and
// high bits.
func argVectors() [][6]uint64 {
	var vs [][6]uint64
	add := func(a0, a1 uint64) { vs = append(vs, [6]uint64{a0, a1}) }
	for v := uint64(0); v <= 48; v++ {
		add(v, 0)
	}
	for _, v := range []uint64{
		0x20000, 0x20008, 0x40000, 0xffffffff, 0xfffffffe, 1<<32 | 2, 1 << 63, ^uint64(0),
		uint64(unix.SIGCHLD), uint64(unix.SIGCHLD) | unix.CLONE_NEWUSER, unix.CLONE_NEWNS | unix.CLONE_VM,
		unix.CLONE_NEWCGROUP, unix.CLONE_NEWNET, unix.CLONE_THREAD | unix.CLONE_VM | unix.CLONE_SIGHAND,
	} {
		add(v, 0)
		add(0, v)
	}
	return vs
}

type abi struct {
	name  string
	audit uint32
	base  uint32 // added to every syscall number
}

var x86ABIs = []abi{{"amd64", auditX86_64, 0}, {"x32", auditX86_64, x32SyscallBit}, {"x86", auditI386, 0}, {"arm64", auditAArch64, 0}}

// differ runs every syscall number of each of x86ABIs with argVectors
// through barco's program and libseccomp's, and reports where they differ.
func differ(t *testing.T, f *Filter) { differABIs(t, f, x86ABIs) }

// syscallsToTry are the syscall numbers of an ABI the differential tests
// run: every one below 560, and each constant a program compares with, and
// its neighbours. A program's verdict on a number can only change at one of
// those or where bit 30 (x32) or bit 31 changes, so with those boundaries
// this is every 32-bit number.
func syscallsToTry(a abi, progs ...[]bpfInsn) []uint32 {
	nrs := map[uint32]bool{}
	for nr := uint32(0); nr < 560; nr++ {
		nrs[a.base+nr] = true
	}
	for _, b := range []uint32{0, 1 << 30, 1 << 31, 3 << 30} {
		nrs[b], nrs[b-1] = true, true
	}
	for _, prog := range progs {
		for _, in := range prog {
			if in.code&0x07 == bpfJMP && in.code&0xf0 != bpfJA {
				nrs[in.k-1], nrs[in.k], nrs[in.k+1] = true, true, true
			}
		}
	}
	return slices.Sorted(maps.Keys(nrs))
}

// newerThanProfile reports whether barco's program must return ENOSYS for
// a syscall number where libseccomp's returns the default action: the
// default denies and the number is above the last one the profile names
// for its ABI. On x86-64, a number with bit 30 set is x32's when x32 is
// in the filter, else amd64's.
func newerThanProfile(f *Filter, p *Program, audit, nr uint32) bool {
	if !denies(f.Default) {
		return false
	}
	var abi string
	switch {
	case audit == auditX86_64 && nr&x32SyscallBit != 0 && slices.Contains(f.Arches, "x32"):
		abi = "x32"
	default:
		for _, name := range f.Arches {
			if id, ok := archID(name); ok && archInfos[id].audit == audit && id != archX32 {
				abi = name
			}
		}
	}
	last, ok := p.LastSyscalls[abi]
	return ok && nr > last
}

func differABIs(t *testing.T, f *Filter, abis []abi) {
	t.Helper()
	ours, ref := program(t, f), reference(t, f)
	compiled, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	vectors := argVectors()
	bad := 0
	for _, a := range abis {
		for _, nr := range syscallsToTry(a, ours, ref) {
			for _, args := range vectors {
				d := seccompData{nr: int32(nr), arch: a.audit, args: args}
				got, err1 := runBPF(ours, d.bytes())
				want, err2 := runBPF(ref, d.bytes())
				if err1 != nil || err2 != nil {
					t.Fatalf("%s nr %#x: %v / %v", a.name, nr, err1, err2)
				}
				// barco returns ENOSYS where runc would (and libseccomp
				// alone does not).
				if want == f.Default.value() && newerThanProfile(f, compiled, a.audit, nr) {
					want = retErrnoValue | uint32(unix.ENOSYS)
				}
				if got != want {
					if bad++; bad <= 20 {
						t.Errorf("%s nr %#x args %#x: barco %#x, want %#x", a.name, nr, args[:2], got, want)
					}
				}
			}
		}
	}
	if bad > 20 {
		t.Errorf("... %d differences in all", bad)
	}
}

// barco's code generator and libseccomp's agree on Docker's default
// profile, for every syscall number of amd64, x32 and x86, for the
// capability sets and kernels that change it.
func TestDifferentialDefaultProfile(t *testing.T) {
	requireAMD64(t)
	envs := map[string]Env{
		"docker caps":   amd64Env(),
		"CAP_SYS_ADMIN": amd64Env("CAP_SYS_ADMIN"),
		"all caps":      amd64Env(capNames...),
		"no caps":       {Arch: "amd64", Kernel: KernelVersion{Kernel: 6, Major: 1}},
		"kernel 4.7":    {Arch: "amd64", Kernel: KernelVersion{Kernel: 4, Major: 7}, Caps: dockerCaps},
	}
	for name, env := range envs {
		t.Run(name, func(t *testing.T) { differ(t, mustResolve(t, DefaultProfile(), env)) })
	}
}

func TestDifferentialCustomProfile(t *testing.T) {
	requireAMD64(t)
	p := parse(t, `{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [
			{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
			{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
			{"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
			{"names": ["geteuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
			{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
				{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 5, "op": "SCMP_CMP_LE"}]},
			{"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_GT"}]},
			{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_GE"}]},
			{"names": ["close"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LT"}]},
			{"names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_NE"}]},
			{"names": ["dup2"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 4294967298, "op": "SCMP_CMP_LE"}]},
			{"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 4294967295, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]},
			{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]},
			{"names": ["shmat", "accept", "semop"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
		]}`)
	env := amd64Env()
	f := mustResolve(t, p, env)
	for _, arches := range [][]string{{"amd64"}, {"amd64", "x86"}, {"amd64", "x32"}, {"amd64", "x86", "x32"}} {
		f.Arches = arches
		differ(t, f)
	}
}

// The same for an arm64 machine (arm64 and arm), compiled here: libseccomp
// compiles for any architecture. The reference filter also holds the
// native amd64 part, which barco's has not, so only the ARM ABIs are run.
func TestDifferentialDefaultProfileARM(t *testing.T) {
	env := amd64Env()
	env.Arch = "arm64"
	f := mustResolve(t, DefaultProfile(), env)
	differABIs(t, f, []abi{{"arm64", auditAArch64, 0}, {"arm", 0x40000028, 0}})
}

// A profile whose program is long enough that the search jumps to
// argument checks more than 255 instructions ahead: they go through
// trampolines, and the verdicts stay libseccomp's. One rule a syscall:
// libseccomp leaves overlapping rules with different actions unspecified.
func TestDifferentialLongProfile(t *testing.T) {
	requireAMD64(t)
	for _, def := range []Action{{Kind: ActAllow}, {Kind: ActErrno, Ret: 1}} {
		f := &Filter{Default: def, Arches: []string{"amd64", "x86", "x32"}}
		for i, name := range syscallNames {
			// libseccomp refuses some argument checks on x86's
			// multiplexed calls.
			if nr, ok := BuiltinTable("x86", name); i%2 != 0 || ok && nr < 0 {
				continue
			}
			act := Action{Kind: ActErrno, Ret: uint(2 + i%30)}
			switch {
			case i%7 == 0:
				act = Action{Kind: ActTrap}
			case def.Kind != ActAllow && i%3 == 0:
				act = Action{Kind: ActAllow}
			}
			// Masked comparisons are checked one by one: a body each.
			r := Rule{Syscall: name, Action: act, Args: []Arg{{Index: 0, Op: OpMaskedEQ, Value: 0xff, ValueTwo: uint64(i % 40)}}}
			if i%4 == 0 {
				r.Args = append(r.Args, Arg{Index: 1, Op: OpMaskedEQ, Value: 1<<63 | 1, ValueTwo: 0})
			}
			f.Rules = append(f.Rules, r)
		}
		p, err := Compile(f)
		if err != nil {
			t.Fatal(err)
		}
		jas := 0
		for _, in := range p.Instructions {
			if in.Code == opJa {
				jas++
			}
		}
		if len(p.Instructions) < 1000 || jas == 0 {
			t.Fatalf("default %s: %d instructions, %d ja: want a program that needs trampolines", def, len(p.Instructions), jas)
		}
		t.Logf("default %s: %d instructions, %d ja", def, len(p.Instructions), jas)
		differ(t, f)
	}
}
