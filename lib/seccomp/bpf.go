package seccomp

import (
	"fmt"
	"math/bits"
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
// into an integer so that sorting items orders them by number, then
// profile order, without moving rules around.
//
//	bits 29-60 syscall number, 9-28 rule index, 8 args32,
//	7 multiplexed (x86), 0-6 the multiplexed call number
type item uint64

const (
	maxRules = 1 << 20
	maxCall  = 1<<7 - 1
)

func makeItem(nr uint32, rule int, args32 bool) item {
	it := item(nr)<<29 | item(rule)<<9
	if args32 {
		it |= 1 << 8
	}
	return it
}

func (it item) nr() uint32          { return uint32(it >> 29) }
func (it item) rule() int           { return int(it>>9) & (maxRules - 1) }
func (it item) args32() bool        { return it&(1<<8) != 0 }
func (it item) mux() bool           { return it&(1<<7) != 0 }
func (it item) call() uint64        { return uint64(it & maxCall) }
func (it item) withCall(c int) item { return it | 1<<7 | item(c) }

// section is the part of the filter for one AUDIT_ARCH value.
type section struct {
	audit uint32
	abis  uint8 // archIDs, as bits
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
	conds   []item
	final   uint32
	users   int // sections that jump to it
	lastUse int // the last of them
	label   int
}

// compiler is what Assemble knows of a filter between its phases.
type compiler struct {
	f        *Filter
	deny     bool
	def      uint32
	sections []section
	items    []item // of one section
	// A seg's target is a body (>= 0) or a return value (^index in rets).
	bodies []body
	rets   []uint32
	// Scratch: the conditional rules of one syscall, and rules with one
	// condition.
	conds   []item
	singles []single
}

// rule is the action and conditions of item it: those of its rule, or for
// a call x86 multiplexes, arg0 == the call number, held in mux.
func (c *compiler) rule(it item, mux *[1]Arg) (Action, []Arg) {
	r := &c.f.Rules[it.rule()]
	if it.mux() {
		mux[0] = Arg{Index: 0, Op: OpEQ, Value: it.call()}
		return r.Action, mux[:]
	}
	return r.Action, r.Args
}

// sameBody reports whether b is c.conds then final.
func (c *compiler) sameBody(b *body, args32 bool, final uint32) bool {
	if b.args32 != args32 || b.final != final || len(b.conds) != len(c.conds) {
		return false
	}
	for j, it := range b.conds {
		var m1, m2 [1]Arg
		act1, args1 := c.rule(it, &m1)
		act2, args2 := c.rule(c.conds[j], &m2)
		if act1 != act2 || !slices.Equal(args1, args2) {
			return false
		}
	}
	return true
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
		sections: make([]section, 0, numArches),
		conds:    make([]item, 0, 32), singles: make([]single, 0, 64)}
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
		secOf[id] = slices.IndexFunc(c.sections, func(s section) bool { return s.audit == info.audit })
		if secOf[id] < 0 {
			secOf[id] = len(c.sections)
			c.sections = append(c.sections, section{audit: info.audit, rejectX32: id == archAMD64})
		}
		s := &c.sections[secOf[id]]
		if id == archX32 {
			s.rejectX32 = false
		}
		s.abis |= 1 << id
	}
	// Section by section: the items of one at a time are kept.
	known := make([]bool, len(f.Rules))
	n := 0
	for _, s := range c.sections {
		n = max(n, len(f.Rules)*bits.OnesCount8(s.abis))
	}
	c.items = make([]item, 0, n)
	segs := make([]seg, 0, len(f.Rules)+16)
	for i := range c.sections {
		s := &c.sections[i]
		if err := c.number(number, s, known); err != nil {
			return nil, err
		}
		start := len(segs)
		var err error
		if segs, err = c.sectionSegs(s, i, c.sortItems(), segs); err != nil {
			return nil, err
		}
		s.segs = segs[start:len(segs):len(segs)]
	}
	for i, r := range f.Rules {
		if !known[i] && !slices.Contains(p.Skipped, r.Syscall) {
			if p.Skipped == nil {
				p.Skipped = make([]string, 0, 16)
			}
			p.Skipped = append(p.Skipped, r.Syscall)
		}
	}
	p.LastSyscalls = make(map[string]uint32, len(abis))
	for _, id := range abis {
		if s := &c.sections[secOf[id]]; s.hasLast[id] {
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

// number makes the items of section s in c.items: every rule on each
// architecture of the section. It marks the rules whose syscall has a
// number in known.
func (c *compiler) number(number numberer, s *section, known []bool) error {
	c.items = c.items[:0]
	for i, r := range c.f.Rules {
		for id := range numArches {
			if s.abis&(1<<id) == 0 {
				continue
			}
			nr, ok := number(id, i)
			if !ok {
				continue
			}
			args32 := archInfos[id].args32
			if nr >= 0 {
				known[i] = true
				s.named(id, uint32(nr))
				c.items = append(c.items, makeItem(uint32(nr), i, args32))
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
			known[i] = true
			if direct, ok := x86Direct(r.Syscall); ok {
				s.named(id, direct)
				c.items = append(c.items, makeItem(direct, i, true))
			}
			c.items = append(c.items, makeItem(mux, i, true).withCall(int(call)))
		}
	}
	return nil
}

// sortItems sorts c.items by number, then profile order. Every number of
// the generated tables has a slot (see itemSlot), and a radix sort on it
// in place takes a fraction of the time of a comparison sort; other
// numbers (from an Assemble caller's table) get the comparison sort.
func (c *compiler) sortItems() []item {
	items := c.items
	for _, it := range items {
		if _, ok := itemSlot(it); !ok {
			slices.Sort(items)
			return items
		}
	}
	radixSort(items, 6)
	// Only the rules of one number can be out of order now.
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j] < items[j-1]; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
	return items
}

// radixSort sorts items by the 6 bits of their slot from shift up, then
// each run of equal bits by the bits below: an American flag sort, which
// moves items within the slice rather than into a second one.
func radixSort(items []item, shift uint) {
	digit := func(it item) int {
		k, _ := itemSlot(it)
		return int(k>>shift) & 63
	}
	var next, end [64]int32
	for _, it := range items {
		end[digit(it)]++
	}
	sum := int32(0)
	for d := range end {
		next[d] = sum
		sum += end[d]
		end[d] = sum
	}
	for d := range next {
		for next[d] < end[d] {
			e := digit(items[next[d]])
			if e != d {
				items[next[d]], items[next[e]] = items[next[e]], items[next[d]]
			}
			next[e]++
		}
	}
	if shift == 0 {
		return
	}
	start := int32(0)
	for d := range end {
		if end[d]-start > 1 {
			radixSort(items[start:end[d]], shift-6)
		}
		start = end[d]
	}
}

// itemSlot is a 12-bit key in the order of an item's number, if the
// number is one the generated tables have: below 1024, ARM's private ones
// from 0xf0000, x32's.
func itemSlot(it item) (uint32, bool) {
	const armPrivate = 0xf0000
	switch nr := it.nr(); {
	case nr < 1024:
		return nr, true
	case nr-armPrivate < 16:
		return 1024 + nr - armPrivate, true
	case nr-x32SyscallBit < 1024:
		return 1040 + nr - x32SyscallBit, true
	}
	return 0, false
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

// sectionSegs appends to segs the target of every syscall number of
// section i, whose items (sorted) are items, and adds the bodies it needs
// to c.bodies, sharing equal ones.
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
			c.conds = c.conds[:0]
			var uncond *Rule
			args32 := false
			for ; k < len(items) && items[k].nr() == nr; k++ {
				it := items[k]
				args32 = it.args32()
				r := &c.f.Rules[it.rule()]
				switch {
				case it.mux() || len(r.Args) > 0:
					c.conds = append(c.conds, it)
				case uncond == nil:
					uncond = r
				default:
					// A second unconditional rule for nr is ignored, as
					// libseccomp (and so runc and crun) ignores it:
					// podman's profile allows setns in its long list,
					// then lists it again with errno EPERM.
				}
			}
			if uint64(nr) > next {
				add(uint32(next), def)
			}
			final := c.def
			if uncond != nil {
				final = uncond.Action.value()
			}
			if len(c.conds) == 0 {
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

// bodyTarget is the body of c.conds then final, used by section i.
func (c *compiler) bodyTarget(i int, args32 bool, final uint32) int32 {
	j := 0
	for j < len(c.bodies) && !c.sameBody(&c.bodies[j], args32, final) {
		j++
	}
	if j == len(c.bodies) {
		c.bodies = append(c.bodies, body{args32: args32, conds: slices.Clone(c.conds), final: final, lastUse: -1})
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
				c.body(a, b, rets)
			}
		}
		a.emitRets(rets)
	}
	rets := a.retBlock()
	for j := range c.bodies {
		if b := &c.bodies[j]; b.users > 1 {
			c.body(a, b, rets)
		}
	}
	a.emitRets(rets)
	return a.finish()
}

// body checks the conditional rules of b in order, then returns the
// final action. Return instructions are in rets, after the body.
func (c *compiler) body(a *assembler, b *body, rets *retBlock) {
	a.bind(b.label)
	conds := b.conds
	for len(conds) > 0 {
		next := a.label()
		// The rules ahead that compare one argument, the same, unmasked:
		// a value group, perhaps.
		c.singles = c.singles[:0]
		for _, it := range conds {
			var m [1]Arg
			act, args := c.rule(it, &m)
			if len(args) != 1 || args[0].Op == OpMaskedEQ ||
				len(c.singles) > 0 && args[0].Index != c.singles[0].arg.Index {
				break
			}
			c.singles = append(c.singles, single{args[0], act.value()})
		}
		if n := a.valueGroup(c.singles, b.args32, next, rets); n > 0 {
			conds = conds[n:]
		} else {
			var m [1]Arg
			act, args := c.rule(conds[0], &m)
			for j, arg := range args {
				pass := rets.label(act.value())
				if j < len(args)-1 {
					pass = a.label()
				}
				a.cond(arg, b.args32, pass, next)
				if j < len(args)-1 {
					a.bind(pass)
				}
			}
			conds = conds[1:]
		}
		a.bind(next)
	}
	a.ret(b.final)
}

// denies reports whether an action refuses the call; runc's list.
func denies(act Action) bool {
	switch act.Kind {
	case ActAllow, ActLog, ActTrace:
		return false
	}
	return true
}
