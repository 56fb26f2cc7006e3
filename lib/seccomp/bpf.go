package seccomp

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sys/unix"
)

// Instruction is one classic-BPF instruction, struct sock_filter.
type Instruction struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Instruction classes and fields of linux/bpf_common.h that the filters use.
const (
	opLdAbsW = 0x20 // BPF_LD|BPF_W|BPF_ABS
	opAndK   = 0x54 // BPF_ALU|BPF_AND|BPF_K
	opJa     = 0x05 // BPF_JMP|BPF_JA
	opJeqK   = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	opJgtK   = 0x25 // BPF_JMP|BPF_JGT|BPF_K
	opJgeK   = 0x35 // BPF_JMP|BPF_JGE|BPF_K
	opJsetK  = 0x45 // BPF_JMP|BPF_JSET|BPF_K
	opRetK   = 0x06 // BPF_RET|BPF_K
)

// The kernel's limit on the length of a filter (BPF_MAXINSNS).
const maxInstructions = 4096

// SECCOMP_RET_* of linux/seccomp.h.
const (
	retKillProcessValue uint32 = 0x80000000
	retKillThreadValue  uint32 = 0x00000000
	retTrapValue        uint32 = 0x00030000
	retErrnoValue       uint32 = 0x00050000
	retTraceValue       uint32 = 0x7ff00000
	retLogValue         uint32 = 0x7ffc0000
	retAllowValue       uint32 = 0x7fff0000
)

// value is the SECCOMP_RET_* value a filter returns for the action.
func (a Action) value() uint32 {
	switch a.Kind {
	case ActAllow:
		return retAllowValue
	case ActErrno:
		return retErrnoValue | uint32(a.Ret)&0xffff
	case ActKillThread:
		return retKillThreadValue
	case ActKillProcess:
		return retKillProcessValue
	case ActTrap:
		return retTrapValue
	case ActTrace:
		return retTraceValue | uint32(a.Ret)&0xffff
	case ActLog:
		return retLogValue
	}
	return retKillProcessValue
}

// An archInfo is what the code generator needs to know of an architecture.
type archInfo struct {
	audit uint32 // AUDIT_ARCH_*
	// Arguments are compared on their low 32 bits only, as libseccomp
	// does for these ABIs.
	args32 bool
}

// Architectures barco generates filters for, by libseccomp name.
var archInfos = map[string]archInfo{
	"amd64":   {audit: 0xc000003e},
	"x32":     {audit: 0xc000003e, args32: true}, // x86-64 audit arch, syscall numbers with bit 30
	"x86":     {audit: 0x40000003, args32: true},
	"arm64":   {audit: 0xc00000b7},
	"arm":     {audit: 0x40000028, args32: true},
	"riscv64": {audit: 0xc00000f3},
}

// x32SyscallBit marks x32 syscall numbers (__X32_SYSCALL_BIT).
const x32SyscallBit = 0x40000000

// SyscallTable gives the number of a syscall on an architecture: ok is
// false when the architecture has no such syscall. Numbers at or below
// -100 are libseccomp's pseudo numbers of calls that x86 multiplexes
// through socketcall(2) (-100 - op) or ipc(2) (-200 - call).
type SyscallTable func(arch, name string) (nr int32, ok bool)

// Direct x86 syscalls for calls that older kernels had only behind
// socketcall(2) (Linux 4.3) and ipc(2) (Linux 5.1), from
// arch/x86/entry/syscalls/syscall_32.tbl. libseccomp knows them but its
// API returns the pseudo number. The tests check them against libseccomp's
// own filters.
var x86Direct = map[string]uint32{
	"socket": 359, "socketpair": 360, "bind": 361, "connect": 362, "listen": 363,
	"accept4": 364, "getsockopt": 365, "setsockopt": 366, "getsockname": 367,
	"getpeername": 368, "sendto": 369, "sendmsg": 370, "recvfrom": 371,
	"recvmsg": 372, "shutdown": 373, "recvmmsg": 337, "sendmmsg": 345,
	"semget": 393, "semctl": 394, "shmget": 395, "shmctl": 396, "shmat": 397,
	"shmdt": 398, "msgget": 399, "msgsnd": 400, "msgrcv": 401, "msgctl": 402,
}

// x86 multiplexers.
const (
	x86Socketcall = 102
	x86IPC        = 117
)

// entry is everything the filter does for one syscall number.
type entry struct {
	nr     uint32
	args32 bool
	conds  []Rule // conditional rules, in profile order
	uncond *Action
	body   int // label of the argument checks, -1 if none
}

// section is the part of the filter for one AUDIT_ARCH value.
type section struct {
	audit uint32
	// Numbers with x32SyscallBit set, other than -1, are a bad
	// architecture: x86-64 without x32.
	rejectX32 bool
	entries   map[uint32]*entry
	// The largest syscall number the profile names, by ABI ("amd64",
	// "x32"): the ones above get ENOSYS (see Assemble).
	last map[string]uint32
}

func (s *section) add(nr uint32, args32 bool, r Rule) error {
	e := s.entries[nr]
	if e == nil {
		e = &entry{nr: nr, args32: args32, body: -1}
		s.entries[nr] = e
	}
	if len(r.Args) > 0 {
		e.conds = append(e.conds, r)
		return nil
	}
	if e.uncond != nil && *e.uncond != r.Action {
		return fmt.Errorf("syscall %s: conflicting rules %s and %s", r.Syscall, *e.uncond, r.Action)
	}
	act := r.Action
	e.uncond = &act
	return nil
}

// Assemble generates the seccomp BPF program of f, with syscall numbers
// from table. The Program also names the syscalls that have no number on
// any of the filter's architectures, and the architectures it left out:
// those barco has no code generator for, which cannot occur on a machine
// whose native architecture (f.Arches[0]) it has one for.
//
// The program checks the architecture, then finds the syscall by binary
// search, then checks the arguments rule by rule. For one syscall,
// conditional rules are tried in profile order before the unconditional
// one; a syscall without a matching rule gets the default action, a
// foreign architecture SECCOMP_RET_KILL_THREAD, as with libseccomp.
//
// When the default action denies, a syscall numbered above every syscall
// the profile names gets ENOSYS instead, as runc does: it is newer than
// the profile, and ENOSYS lets programs fall back to an older call where
// EPERM would be taken as a real refusal. Program.LastSyscalls has those
// numbers.
func Assemble(f *Filter, table SyscallTable) (*Program, error) {
	p := &Program{LastSyscalls: map[string]uint32{}}
	if len(f.Arches) == 0 {
		return nil, fmt.Errorf("filter has no architecture")
	}
	if _, ok := archInfos[f.Arches[0]]; !ok {
		return nil, fmt.Errorf("architecture %s: barco-seccomp does not generate filters for it", f.Arches[0])
	}
	var arches []string
	var sections []*section
	byAudit := map[uint32]*section{}
	for _, name := range f.Arches {
		info, ok := archInfos[name]
		if !ok {
			p.IgnoredArches = append(p.IgnoredArches, name)
			continue
		}
		arches = append(arches, name)
		s := byAudit[info.audit]
		if s == nil {
			s = &section{audit: info.audit, rejectX32: name == "amd64",
				entries: make(map[uint32]*entry, len(f.Rules)), last: map[string]uint32{}}
			byAudit[info.audit] = s
			sections = append(sections, s)
		}
		if name == "x32" {
			s.rejectX32 = false
		}
	}
	known := map[string]bool{}
	// Architecture by architecture, so that a table can keep its place.
	for _, arch := range arches {
		info := archInfos[arch]
		s := byAudit[info.audit]
		for _, r := range f.Rules {
			nr, ok := table(arch, r.Syscall)
			if !ok {
				continue
			}
			if nr >= 0 {
				known[r.Syscall] = true
				s.last[arch] = max(s.last[arch], uint32(nr))
				if err := s.add(uint32(nr), info.args32, r); err != nil {
					return nil, err
				}
				continue
			}
			if arch != "x86" {
				continue // send/recv and the like: no such syscall here
			}
			// x86 multiplexed calls: the direct syscall with the rule as
			// it is, and the multiplexer with the call number in arg0.
			// The other arguments are behind a pointer there and cannot
			// be checked; libseccomp drops them too.
			known[r.Syscall] = true
			if direct, ok := x86Direct[r.Syscall]; ok {
				s.last[arch] = max(s.last[arch], direct)
				if err := s.add(direct, true, r); err != nil {
					return nil, err
				}
			}
			mux, call := uint32(x86Socketcall), uint64(-nr-100)
			if nr <= -200 {
				mux, call = x86IPC, uint64(-nr-200)
			}
			muxRule := Rule{Syscall: r.Syscall, Action: r.Action, Args: []Arg{{Index: 0, Op: OpEQ, Value: call}}}
			if err := s.add(mux, true, muxRule); err != nil {
				return nil, err
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range f.Rules {
		if !known[r.Syscall] && !seen[r.Syscall] {
			seen[r.Syscall] = true
			p.Skipped = append(p.Skipped, r.Syscall)
		}
	}

	a := &assembler{
		prog:   make([]Instruction, 0, maxInstructions),
		labels: make([]int, 0, maxInstructions),
		fixups: make([]fixup, 0, maxInstructions),
	}
	badArch := a.label()
	a.ld(4) // seccomp_data.arch
	secLabels := make([]int, len(sections))
	for i, s := range sections {
		secLabels[i] = a.label()
		a.jeqFar(s.audit, secLabels[i])
	}
	a.bind(badArch)
	a.ret(retKillThreadValue)
	for i, s := range sections {
		a.bind(secLabels[i])
		a.section(s, f.Default)
		maps.Copy(p.LastSyscalls, s.last)
	}
	prog, err := a.finish()
	if err != nil {
		return nil, err
	}
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("filter of %d instructions: the kernel takes at most %d", len(prog), maxInstructions)
	}
	p.Instructions = prog
	return p, nil
}

// assembler lays out instructions with forward jumps to labels.
type assembler struct {
	prog   []Instruction
	labels []int // label -> instruction index, -1 until bound
	fixups []fixup
}

type fixup struct {
	pc             int
	jt, jf, target int // labels; -1 for none (the offset stays 0)
}

func (a *assembler) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *assembler) bind(l int) { a.labels[l] = len(a.prog) }

func (a *assembler) emit(code uint16, k uint32) {
	a.prog = append(a.prog, Instruction{Code: code, K: k})
}

func (a *assembler) ld(off uint32) { a.emit(opLdAbsW, off) }
func (a *assembler) ret(v uint32)  { a.emit(opRetK, v) }

// jump emits a conditional jump; jt and jf are labels, or -1 to fall
// through.
func (a *assembler) jump(code uint16, k uint32, jt, jf int) {
	a.fixups = append(a.fixups, fixup{pc: len(a.prog), jt: jt, jf: jf, target: -1})
	a.emit(code, k)
}

// ja jumps to a label at any distance.
func (a *assembler) ja(l int) {
	a.fixups = append(a.fixups, fixup{pc: len(a.prog), jt: -1, jf: -1, target: l})
	a.emit(opJa, 0)
}

// jeqFar jumps to a label at any distance if A == k.
func (a *assembler) jeqFar(k uint32, l int) {
	skip := a.label()
	a.jump(opJeqK, k, -1, skip)
	a.ja(l)
	a.bind(skip)
}

func (a *assembler) finish() ([]Instruction, error) {
	for _, f := range a.fixups {
		off := func(l int) (int, error) {
			if l < 0 {
				return 0, nil
			}
			if a.labels[l] < 0 {
				return 0, fmt.Errorf("BPF assembler: unbound label %d", l)
			}
			d := a.labels[l] - f.pc - 1
			if d < 0 {
				return 0, fmt.Errorf("BPF assembler: backward jump at %d", f.pc)
			}
			return d, nil
		}
		if f.target >= 0 {
			d, err := off(f.target)
			if err != nil {
				return nil, err
			}
			a.prog[f.pc].K = uint32(d)
			continue
		}
		jt, err := off(f.jt)
		if err != nil {
			return nil, err
		}
		jf, err := off(f.jf)
		if err != nil {
			return nil, err
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("BPF assembler: conditional jump of %d/%d at %d", jt, jf, f.pc)
		}
		a.prog[f.pc].Jt, a.prog[f.pc].Jf = uint8(jt), uint8(jf)
	}
	return a.prog, nil
}

// leafSize is how many syscall numbers a leaf of the search tree compares
// one after the other.
const leafSize = 8

func (a *assembler) section(s *section, def Action) {
	a.ld(0) // seccomp_data.nr
	if s.rejectX32 {
		// x32 numbers without x32 in the filter are a foreign ABI; -1 is
		// what a tracer sets to skip a call, and goes on to the default.
		dispatch := a.label()
		bad := a.label()
		a.jump(opJgeK, x32SyscallBit, -1, dispatch)
		a.jump(opJeqK, 0xffffffff, dispatch, bad)
		a.bind(bad)
		a.ret(retKillThreadValue)
		a.bind(dispatch)
	}
	if denies(def) {
		a.enosysAbove(s)
	}
	entries := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(x, y *entry) int { return cmp.Compare(x.nr, y.nr) })
	defLabel := a.label()
	a.tree(runs(entries), defLabel)
	a.bind(defLabel)
	a.ret(def.value())
	for _, e := range entries {
		if e.body >= 0 {
			a.bind(e.body)
			a.body(e, def)
		}
	}
}

// denies reports whether an action refuses the call; runc's list.
func denies(act Action) bool {
	switch act.Kind {
	case ActAllow, ActLog, ActTrace:
		return false
	}
	return true
}

// enosysAbove returns ENOSYS for syscall numbers above the section's last
// ones, per ABI, and falls through for the others.
func (a *assembler) enosysAbove(s *section) {
	enosys := a.label()
	rest := a.label()
	amd64Last, hasAMD64 := s.last["amd64"]
	x32Last, hasX32 := s.last["x32"]
	switch {
	case hasAMD64 && hasX32:
		x32 := a.label()
		a.jump(opJsetK, x32SyscallBit, x32, -1)
		a.jump(opJgtK, amd64Last, enosys, rest)
		a.bind(x32)
		a.jump(opJgtK, x32Last, enosys, rest)
	case hasAMD64 && !s.rejectX32:
		// x32 in the filter but no x32 syscall named: only amd64's check.
		a.jump(opJsetK, x32SyscallBit, rest, -1)
		a.jump(opJgtK, amd64Last, enosys, rest)
	case len(s.last) == 1:
		for _, last := range s.last {
			a.jump(opJgtK, last, enosys, rest)
		}
	default:
		a.ja(rest)
	}
	a.bind(enosys)
	a.ret(retErrnoValue | uint32(unix.ENOSYS))
	a.bind(rest)
}

// run is a range of consecutive syscall numbers that end alike: one
// unconditional action for all (simple), or one entry with argument checks.
type run struct {
	lo, hi uint32
	simple bool
	ret    uint32 // SECCOMP_RET_* of a simple run
	e      *entry // the entry of a run that is not simple
}

// runs groups entries (sorted by number) into runs. Docker's allow-list is
// dense, so ranges make the program about half as long as one comparison
// per syscall, which the kernel's load time follows.
func runs(entries []*entry) []run {
	var out []run
	for _, e := range entries {
		if len(e.conds) > 0 || e.uncond == nil {
			out = append(out, run{lo: e.nr, hi: e.nr, e: e})
			continue
		}
		v := e.uncond.value()
		if n := len(out); n > 0 && out[n-1].simple && out[n-1].ret == v && out[n-1].hi+1 == e.nr {
			out[n-1].hi = e.nr
			continue
		}
		out = append(out, run{lo: e.nr, hi: e.nr, simple: true, ret: v})
	}
	return out
}

// tree emits a binary search over runs (sorted, disjoint). A leaf checks
// its runs in order; simple runs return from the leaf, sharing one return
// per action, and the others jump to a body emitted later (entry.body).
func (a *assembler) tree(rs []run, def int) {
	if len(rs) > leafSize {
		mid := len(rs) / 2
		right, left := a.label(), a.label()
		a.jump(opJgeK, rs[mid].lo, -1, left)
		a.ja(right)
		a.bind(left)
		a.tree(rs[:mid], def)
		a.bind(right)
		a.tree(rs[mid:], def)
		return
	}
	var targets [leafSize]int
	var retValues [leafSize]uint32
	var retLabels [leafSize]int
	nrets := 0
	leafDefault := a.label()
	for i, r := range rs {
		if r.simple {
			j := slices.Index(retValues[:nrets], r.ret)
			if j < 0 {
				j = nrets
				retValues[j], retLabels[j] = r.ret, a.label()
				nrets++
			}
			targets[i] = retLabels[j]
		} else {
			targets[i] = a.label()
		}
		if r.lo == r.hi {
			a.jump(opJeqK, r.lo, targets[i], -1)
			continue
		}
		// Above the run: on to the next one. Below it: a gap, as every
		// earlier run was checked already.
		next := a.label()
		a.jump(opJgtK, r.hi, next, -1)
		a.jump(opJgeK, r.lo, targets[i], leafDefault)
		a.bind(next)
	}
	a.bind(leafDefault)
	a.ja(def)
	for j := range nrets {
		a.bind(retLabels[j])
		a.ret(retValues[j])
	}
	for i, r := range rs {
		if !r.simple {
			a.bind(targets[i])
			r.e.body = a.label()
			a.ja(r.e.body)
		}
	}
}

// argOffsets are the offsets of the low and high words of argument i in
// struct seccomp_data, in host byte order.
func argOffsets(i uint) (lo, hi uint32) {
	base := uint32(16 + 8*i)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return base, base + 4
	}
	return base + 4, base
}

// body checks the conditional rules of e in order, then returns the
// unconditional action or the default.
func (a *assembler) body(e *entry, def Action) {
	for _, r := range e.conds {
		next := a.label()
		for _, c := range r.Args {
			a.cond(c, e.args32, next)
		}
		a.ret(r.Action.value())
		a.bind(next)
	}
	if e.uncond != nil {
		a.ret(e.uncond.value())
	} else {
		a.ret(def.value())
	}
}

// cond falls through when argument c.Index meets the condition and jumps
// to fail when it does not. A 64-bit argument is compared high word first.
func (a *assembler) cond(c Arg, args32 bool, fail int) {
	lo, hi := argOffsets(c.Index)
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	pass := a.label()
	defer a.bind(pass)
	switch c.Op {
	case OpMaskedEQ:
		mlo, mhi := vlo, vhi
		wlo, whi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		if !args32 {
			a.ld(hi)
			a.emit(opAndK, mhi)
			a.jump(opJeqK, whi, -1, fail)
		}
		a.ld(lo)
		a.emit(opAndK, mlo)
		a.jump(opJeqK, wlo, -1, fail)
	case OpEQ:
		if !args32 {
			a.ld(hi)
			a.jump(opJeqK, vhi, -1, fail)
		}
		a.ld(lo)
		a.jump(opJeqK, vlo, -1, fail)
	case OpNE:
		if !args32 {
			a.ld(hi)
			a.jump(opJeqK, vhi, -1, pass)
		}
		a.ld(lo)
		a.jump(opJeqK, vlo, fail, -1)
	case OpGT, OpGE:
		if !args32 {
			a.ld(hi)
			a.jump(opJgtK, vhi, pass, -1)
			a.jump(opJeqK, vhi, -1, fail)
		}
		a.ld(lo)
		op := uint16(opJgtK)
		if c.Op == OpGE {
			op = opJgeK
		}
		a.jump(op, vlo, -1, fail)
	case OpLT, OpLE:
		if !args32 {
			a.ld(hi)
			a.jump(opJgtK, vhi, fail, -1)
			a.jump(opJeqK, vhi, -1, pass)
		}
		a.ld(lo)
		op := uint16(opJgeK) // x < v fails when x >= v
		if c.Op == OpLE {
			op = opJgtK
		}
		a.jump(op, vlo, fail, -1)
	}
}
