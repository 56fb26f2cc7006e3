package seccomp

import (
	"fmt"
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

// archInfos are the architectures barco generates filters for: those of
// the syscall tables.
var archInfos = [numArches]archInfo{
	archAMD64:   {audit: 0xc000003e},
	archX32:     {audit: 0xc000003e, args32: true}, // x86-64 audit arch, syscall numbers with bit 30
	archX86:     {audit: 0x40000003, args32: true},
	archARM64:   {audit: 0xc00000b7},
	archARM:     {audit: 0x40000028, args32: true},
	archRISCV64: {audit: 0xc00000f3},
}

// x32SyscallBit marks x32 syscall numbers (__X32_SYSCALL_BIT).
const x32SyscallBit = 0x40000000

// SyscallTable gives the number of a syscall on an architecture: ok is
// false when the architecture has no such syscall. Numbers at or below
// -100 are libseccomp's pseudo numbers of calls that x86 multiplexes
// through socketcall(2) (-100 - op) or ipc(2) (-200 - call).
type SyscallTable func(arch, name string) (nr int32, ok bool)

// x86Direct is the direct x86 syscall of a call that older kernels had
// only behind socketcall(2) (Linux 4.3) or ipc(2) (Linux 5.1), from
// arch/x86/entry/syscalls/syscall_32.tbl. libseccomp knows them but its
// API returns the pseudo number. The tests check them against
// libseccomp's own filters.
func x86Direct(name string) (uint32, bool) {
	switch name {
	case "socket":
		return 359, true
	case "socketpair":
		return 360, true
	case "bind":
		return 361, true
	case "connect":
		return 362, true
	case "listen":
		return 363, true
	case "accept4":
		return 364, true
	case "getsockopt":
		return 365, true
	case "setsockopt":
		return 366, true
	case "getsockname":
		return 367, true
	case "getpeername":
		return 368, true
	case "sendto":
		return 369, true
	case "sendmsg":
		return 370, true
	case "recvfrom":
		return 371, true
	case "recvmsg":
		return 372, true
	case "shutdown":
		return 373, true
	case "recvmmsg":
		return 337, true
	case "sendmmsg":
		return 345, true
	case "semget":
		return 393, true
	case "semctl":
		return 394, true
	case "shmget":
		return 395, true
	case "shmctl":
		return 396, true
	case "shmat":
		return 397, true
	case "shmdt":
		return 398, true
	case "msgget":
		return 399, true
	case "msgsnd":
		return 400, true
	case "msgrcv":
		return 401, true
	case "msgctl":
		return 402, true
	}
	return 0, false
}

// x86 multiplexers.
const (
	x86Socketcall = 102
	x86IPC        = 117
)

// An item is one rule applied to one syscall number of a section, packed
// into an integer so that sorting items orders them by section, then
// number, then profile order, without moving rules around.
//
//	bits 61-63 section, 29-60 syscall number, 9-28 rule index,
//	8 args32, 7 multiplexed (x86), 0-6 the multiplexed call number
type item uint64

const (
	maxRules = 1 << 20
	maxCall  = 1<<7 - 1
)

func makeItem(sec int, nr uint32, rule int, args32 bool) item {
	it := item(sec)<<61 | item(nr)<<29 | item(rule)<<9
	if args32 {
		it |= 1 << 8
	}
	return it
}

func (it item) sec() int            { return int(it >> 61) }
func (it item) nr() uint32          { return uint32(it >> 29) }
func (it item) rule() int           { return int(it>>9) & (maxRules - 1) }
func (it item) args32() bool        { return it&(1<<8) != 0 }
func (it item) mux() bool           { return it&(1<<7) != 0 }
func (it item) call() uint64        { return uint64(it & maxCall) }
func (it item) withCall(c int) item { return it | 1<<7 | item(c) }

// section is the part of the filter for one AUDIT_ARCH value.
type section struct {
	audit uint32
	// Numbers from x32SyscallBit up, other than -1, are a bad
	// architecture: x86-64 without x32.
	rejectX32 bool
	// The largest syscall number the profile names, by ABI: the ones
	// above get ENOSYS (see Assemble).
	last    [numArches]uint32
	hasLast [numArches]bool
	// Every syscall number's target, in order: segs[i] is for the numbers
	// from segs[i].lo to segs[i+1].lo - 1.
	segs []seg
}

func (s *section) named(abi int, nr uint32) {
	if !s.hasLast[abi] || nr > s.last[abi] {
		s.last[abi], s.hasLast[abi] = nr, true
	}
}

// seg is a range of values with one target: from lo up to the lo of the
// next seg in its list.
type seg struct {
	lo     uint32
	target int32
}

// body is everything a syscall does that depends on its arguments: the
// conditional rules in profile order, then the final return value (the
// unconditional rule's, or the default).
type body struct {
	args32  bool
	rules   []Rule
	final   uint32
	users   int // sections that jump to it
	lastUse int // the last of them
	label   int
}

func (b *body) same(args32 bool, rules []Rule, final uint32) bool {
	return b.args32 == args32 && b.final == final &&
		slices.EqualFunc(b.rules, rules, func(x, y Rule) bool {
			return x.Action == y.Action && slices.Equal(x.Args, y.Args)
		})
}

// compiler is what Assemble knows of a filter between its phases.
type compiler struct {
	f        *Filter
	deny     bool
	def      uint32
	sections []*section
	items    []item
	// A seg's target is a body (>= 0) or a return value (^index in rets).
	bodies []body
	rets   []uint32
	// Scratch: the conditional rules of one syscall, and the arg0
	// conditions of the multiplexed x86 calls.
	rules   []Rule
	muxArgs []Arg
}

func (c *compiler) retTarget(v uint32) int32 {
	i := slices.Index(c.rets, v)
	if i < 0 {
		i = len(c.rets)
		c.rets = append(c.rets, v)
	}
	return int32(^i)
}

// Assemble generates the seccomp BPF program of f, with syscall numbers
// from table. The Program also names the syscalls that have no number on
// any of the filter's architectures, and the architectures it left out:
// those barco has no code generator for, which cannot occur on a machine
// whose native architecture (f.Arches[0]) it has one for.
//
// The program checks the architecture, then finds the syscall by a binary
// search over ranges of numbers that end alike (one compare per range),
// then, for the syscalls that have conditional rules, checks the
// arguments; identical checks are emitted once. For one syscall,
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
	return assemble(f, func(arch, rule int) (int32, bool) {
		return table(syscallArches[arch], f.Rules[rule].Syscall)
	})
}

// numberer is a SyscallTable for the rules of one Filter: the number of
// the syscall of rule i on architecture arch (an archID).
type numberer func(arch, i int) (nr int32, ok bool)

func assemble(f *Filter, number numberer) (*Program, error) {
	if len(f.Arches) == 0 {
		return nil, fmt.Errorf("filter has no architecture")
	}
	if _, ok := archID(f.Arches[0]); !ok {
		return nil, fmt.Errorf("architecture %s: barco-seccomp does not generate filters for it", f.Arches[0])
	}
	if len(f.Rules) > maxRules {
		return nil, fmt.Errorf("filter of %d rules: barco-seccomp takes at most %d", len(f.Rules), maxRules)
	}
	p := &Program{}
	c := &compiler{f: f, deny: denies(f.Default), def: f.Default.value(),
		rules: make([]Rule, 0, 32), muxArgs: make([]Arg, 0, 32)}
	var abis []int // the filter's architectures, by archID
	var secOf [numArches]int
	for _, name := range f.Arches {
		id, ok := archID(name)
		if !ok {
			p.IgnoredArches = append(p.IgnoredArches, name)
			continue
		}
		if slices.Contains(abis, id) {
			continue
		}
		abis = append(abis, id)
		info := archInfos[id]
		secOf[id] = slices.IndexFunc(c.sections, func(s *section) bool { return s.audit == info.audit })
		if secOf[id] < 0 {
			secOf[id] = len(c.sections)
			c.sections = append(c.sections, &section{audit: info.audit, rejectX32: id == archAMD64})
		}
		if id == archX32 {
			c.sections[secOf[id]].rejectX32 = false
		}
	}
	if err := c.number(number, abis, secOf, p); err != nil {
		return nil, err
	}
	if err := c.partition(); err != nil {
		return nil, err
	}
	p.LastSyscalls = make(map[string]uint32, len(abis))
	for _, id := range abis {
		if s := c.sections[secOf[id]]; s.hasLast[id] {
			p.LastSyscalls[syscallArches[id]] = s.last[id]
		}
	}
	prog, err := c.emit()
	if err != nil {
		return nil, err
	}
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("filter of %d instructions: the kernel takes at most %d", len(prog), maxInstructions)
	}
	p.Instructions = prog
	return p, nil
}

// number makes the items of every rule on every architecture, and lists
// the syscalls no architecture knows in p.Skipped.
func (c *compiler) number(number numberer, abis []int, secOf [numArches]int, p *Program) error {
	c.items = make([]item, 0, len(c.f.Rules)*len(abis)+len(c.f.Rules)/4)
	// Rule by rule, each on every architecture, so that a table can look
	// a name up once.
	for i, r := range c.f.Rules {
		known := false
		for _, id := range abis {
			nr, ok := number(id, i)
			if !ok {
				continue
			}
			sec := secOf[id]
			s, args32 := c.sections[sec], archInfos[id].args32
			if nr >= 0 {
				known = true
				s.named(id, uint32(nr))
				c.items = append(c.items, makeItem(sec, uint32(nr), i, args32))
				continue
			}
			if id != archX86 {
				continue // send/recv and the like: no such syscall here
			}
			// x86 multiplexed calls: the direct syscall with the rule as
			// it is, and the multiplexer with the call number in arg0.
			// The other arguments are behind a pointer there and cannot
			// be checked; libseccomp drops them too.
			mux, call := uint32(x86Socketcall), -nr-100
			if nr <= -200 {
				mux, call = x86IPC, -nr-200
			}
			if call < 0 || call > maxCall {
				return fmt.Errorf("syscall %s: x86 number %d is not libseccomp's for a socketcall or ipc call", r.Syscall, nr)
			}
			known = true
			if direct, ok := x86Direct(r.Syscall); ok {
				s.named(id, direct)
				c.items = append(c.items, makeItem(sec, direct, i, true))
			}
			c.items = append(c.items, makeItem(sec, mux, i, true).withCall(int(call)))
		}
		if !known && !slices.Contains(p.Skipped, r.Syscall) {
			p.Skipped = append(p.Skipped, r.Syscall)
		}
	}
	return nil
}

// route is where a syscall number goes before the search: a fixed
// verdict, or the search (fixed false).
func (s *section) route(nr uint32, deny bool) (ret uint32, fixed bool) {
	if s.rejectX32 && nr >= x32SyscallBit && nr != 0xffffffff {
		// x32 numbers without x32 in the filter are a foreign ABI; -1 is
		// what a tracer sets to skip a call, and goes on to the default.
		return retKillThreadValue, true
	}
	if !deny {
		return 0, false
	}
	enosys := retErrnoValue | uint32(unix.ENOSYS)
	amd64Last, hasAMD64 := s.last[archAMD64], s.hasLast[archAMD64]
	x32Last, hasX32 := s.last[archX32], s.hasLast[archX32]
	above := func(last uint32) (uint32, bool) {
		if nr > last {
			return enosys, true
		}
		return 0, false
	}
	switch {
	case hasAMD64 && hasX32:
		if nr&x32SyscallBit != 0 {
			return above(x32Last)
		}
		return above(amd64Last)
	case hasAMD64 && !s.rejectX32:
		// x32 in the filter but no x32 syscall named: only amd64's bound.
		if nr&x32SyscallBit != 0 {
			return 0, false
		}
		return above(amd64Last)
	}
	n, last := 0, uint32(0)
	for id, has := range s.hasLast {
		if has {
			n, last = n+1, s.last[id]
		}
	}
	if n == 1 {
		return above(last)
	}
	return 0, false
}

// partition finds the target of every syscall number of every section:
// it fills the sections' segs, and the bodies they need (equal ones
// shared).
func (c *compiler) partition() error {
	slices.Sort(c.items)
	segs := make([]seg, 0, len(c.items)/2+16)
	for i, s := range c.sections {
		start := len(segs)
		n, _ := slices.BinarySearchFunc(c.items, i+1, func(it item, sec int) int { return it.sec() - sec })
		var err error
		if segs, err = c.sectionSegs(s, i, c.items[:n], segs); err != nil {
			return err
		}
		c.items = c.items[n:]
		s.segs = segs[start:len(segs):len(segs)]
	}
	return nil
}

// sectionSegs appends to segs the targets of section i, whose items are
// the first ones of items.
func (c *compiler) sectionSegs(s *section, i int, items []item, segs []seg) ([]seg, error) {
	start := len(segs)
	add := func(lo uint32, t int32) {
		if n := len(segs); n > start && segs[n-1].target == t {
			return
		}
		segs = append(segs, seg{lo, t})
	}
	def := c.retTarget(c.def)
	// The numbers where route can change: it is fixed between two of them.
	bounds := make([]uint32, 0, 5+numArches)
	bounds = append(bounds, 0, x32SyscallBit, 2*x32SyscallBit, 3*x32SyscallBit, 0xffffffff)
	for id, has := range s.hasLast {
		if has && s.last[id] < 0xffffffff {
			bounds = append(bounds, s.last[id]+1)
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	k := 0 // next item
	for bi, lo := range bounds {
		hi := uint32(0xffffffff)
		if bi+1 < len(bounds) {
			hi = bounds[bi+1] - 1
		}
		if ret, fixed := s.route(lo, c.deny); fixed {
			add(lo, c.retTarget(ret))
			// The rules of these numbers cannot apply.
			for k < len(items) && items[k].nr() <= hi {
				k++
			}
			continue
		}
		next := uint64(lo) // the first number without a target yet
		for k < len(items) && items[k].nr() <= hi {
			nr := items[k].nr()
			// Every rule of nr: the conditional ones in order, and the
			// unconditional one, if any.
			c.rules = c.rules[:0]
			var uncond *Rule
			args32 := false
			for ; k < len(items) && items[k].nr() == nr; k++ {
				it := items[k]
				args32 = it.args32()
				r := c.f.Rules[it.rule()]
				if it.mux() {
					c.muxArgs = append(c.muxArgs, Arg{Index: 0, Op: OpEQ, Value: it.call()})
					r.Args = c.muxArgs[len(c.muxArgs)-1:]
				}
				if len(r.Args) > 0 {
					c.rules = append(c.rules, r)
					continue
				}
				if uncond != nil && uncond.Action != r.Action {
					return nil, fmt.Errorf("syscall %s: conflicting rules %s and %s", r.Syscall, uncond.Action, r.Action)
				}
				uncond = &c.f.Rules[it.rule()]
			}
			if uint64(nr) > next {
				add(uint32(next), def)
			}
			final := c.def
			if uncond != nil {
				final = uncond.Action.value()
			}
			if len(c.rules) == 0 {
				add(nr, c.retTarget(final))
			} else {
				add(nr, c.bodyTarget(i, args32, final))
			}
			next = uint64(nr) + 1
		}
		if next <= uint64(hi) {
			add(uint32(next), def)
		}
	}
	return segs, nil
}

// bodyTarget is the body of c.rules then final, used by section i.
func (c *compiler) bodyTarget(i int, args32 bool, final uint32) int32 {
	j := slices.IndexFunc(c.bodies, func(b body) bool { return b.same(args32, c.rules, final) })
	if j < 0 {
		j = len(c.bodies)
		c.bodies = append(c.bodies, body{args32: args32, rules: slices.Clone(c.rules), final: final, lastUse: -1})
	}
	if b := &c.bodies[j]; b.lastUse != i {
		b.users++
		b.lastUse = i
	}
	return int32(j)
}

// emit lays the program out: the architecture check, then each section's
// search, the bodies only it uses and its returns, then the bodies that
// several sections share, and their returns.
func (c *compiler) emit() ([]Instruction, error) {
	a := newAssembler()
	for i := range c.bodies {
		c.bodies[i].label = a.label()
	}
	a.ld(4) // seccomp_data.arch
	secLabels := make([]int, len(c.sections))
	for i, s := range c.sections {
		secLabels[i] = a.label()
		next := a.label()
		a.jump(opJeqK, s.audit, secLabels[i], next)
		a.bind(next)
	}
	a.ret(retKillThreadValue)
	for i, s := range c.sections {
		a.bind(secLabels[i])
		rets := a.retBlock()
		a.ld(0) // seccomp_data.nr
		a.search(a.compress(s.segs, func(t int32) int {
			if t >= 0 {
				return c.bodies[t].label
			}
			return rets.label(c.rets[^t])
		}))
		for j := range c.bodies {
			if b := &c.bodies[j]; b.users == 1 && b.lastUse == i {
				a.body(b, rets)
			}
		}
		a.emitRets(rets)
	}
	rets := a.retBlock()
	for j := range c.bodies {
		if b := &c.bodies[j]; b.users > 1 {
			a.body(b, rets)
		}
	}
	a.emitRets(rets)
	return a.finish()
}

// denies reports whether an action refuses the call; runc's list.
func denies(act Action) bool {
	switch act.Kind {
	case ActAllow, ActLog, ActTrace:
		return false
	}
	return true
}
