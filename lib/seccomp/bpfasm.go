package seccomp

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// assembler lays out instructions whose jumps go to labels. Classic BPF
// only jumps forward, and a conditional jump at most 255 instructions:
// finish inserts a trampoline after a jump whose target is farther.
type assembler struct {
	insns  []asmInsn
	labels []int32 // label -> instruction index, -1 until bound
	// Scratch of the searches, reused: in a new process every fresh page
	// of heap costs a page fault, more than the work done in it.
	elems  []elem
	points []point
	bounds []uint32
	spans  []span
	rets   []int64 // by bound: a return value, or -1 for none
	segs   []seg
}

// asmInsn is an Instruction whose jumps are labels: jt and jf of a
// conditional jump, jt of ja; -1 otherwise.
type asmInsn struct {
	code   uint16
	k      uint32
	jt, jf int32
}

func newAssembler() *assembler {
	// Docker's default profile takes about 300 instructions.
	return &assembler{insns: make([]asmInsn, 0, 512), labels: make([]int32, 0, 512),
		elems: make([]elem, 0, 128), points: make([]point, 0, 32),
		bounds: make([]uint32, 0, 64), spans: make([]span, 0, 64), rets: make([]int64, 0, 64), segs: make([]seg, 0, 64)}
}

func (a *assembler) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *assembler) bind(l int) { a.labels[l] = int32(len(a.insns)) }

func (a *assembler) emit(code uint16, k uint32) {
	a.insns = append(a.insns, asmInsn{code: code, k: k, jt: -1, jf: -1})
}

func (a *assembler) ld(off uint32) { a.emit(opLdAbsW, off) }
func (a *assembler) ret(v uint32)  { a.emit(opRetK, v) }

// jump emits a conditional jump to label jt if true, jf if false.
func (a *assembler) jump(code uint16, k uint32, jt, jf int) {
	a.insns = append(a.insns, asmInsn{code: code, k: k, jt: int32(jt), jf: int32(jf)})
}

// ja jumps to a label at any distance.
func (a *assembler) ja(l int) {
	a.insns = append(a.insns, asmInsn{code: opJa, jt: int32(l), jf: -1})
}

// conditional reports whether code is a jump of class BPF_JMP other
// than ja.
func conditional(code uint16) bool { return code&0x07 == opJa&0x07 && code != opJa }

// dist is the offset of a jump at pc to label l.
func (a *assembler) dist(pc int, l int32) int { return int(a.labels[l]) - pc - 1 }

// finish resolves the labels. A jump to a return becomes the return; a
// conditional jump to a label more than 255 instructions ahead goes
// through a trampoline inserted right after it: a copy of the return it
// leads to, or a ja.
func (a *assembler) finish() ([]Instruction, error) {
	for l, at := range a.labels {
		if at < 0 || int(at) >= len(a.insns) {
			return nil, fmt.Errorf("BPF assembler: label %d is not an instruction", l)
		}
	}
	for pc, in := range a.insns {
		if in.code == opJa {
			if t := a.insns[a.labels[in.jt]]; t.code == opRetK && a.dist(pc, in.jt) >= 0 {
				a.insns[pc] = t
			}
		}
	}
	// Each round only moves code apart; a jump, once next to its
	// trampolines, stays there.
	for a.relax() {
	}
	return a.encode()
}

// encode resolves the labels into offsets, and refuses those classic BPF
// cannot hold: backward, or more than 255 for a conditional jump.
func (a *assembler) encode() ([]Instruction, error) {
	prog := make([]Instruction, len(a.insns))
	for pc, in := range a.insns {
		prog[pc] = Instruction{Code: in.code, K: in.k}
		switch {
		case in.code == opJa:
			d := a.dist(pc, in.jt)
			if d < 0 {
				return nil, fmt.Errorf("BPF assembler: backward jump at %d", pc)
			}
			prog[pc].K = uint32(d)
		case conditional(in.code):
			jt, jf := a.dist(pc, in.jt), a.dist(pc, in.jf)
			if jt < 0 || jf < 0 || jt > 255 || jf > 255 {
				return nil, fmt.Errorf("BPF assembler: conditional jump of %d/%d at %d", jt, jf, pc)
			}
			prog[pc].Jt, prog[pc].Jf = uint8(jt), uint8(jf)
		}
	}
	return prog, nil
}

// relax inserts the trampolines of the conditional jumps that are too
// far, and reports whether there were any.
func (a *assembler) relax() bool {
	far := func(pc int, l int32) bool { return a.dist(pc, l) > 255 }
	n := 0
	for pc, in := range a.insns {
		if conditional(in.code) {
			if far(pc, in.jt) {
				n++
			}
			if far(pc, in.jf) {
				n++
			}
		}
	}
	if n == 0 {
		return false
	}
	old := len(a.labels)
	moved := make([]int32, len(a.insns)) // old index -> new
	out := make([]asmInsn, 0, len(a.insns)+n)
	for pc, in := range a.insns {
		moved[pc] = int32(len(out))
		out = append(out, in)
		if !conditional(in.code) {
			continue
		}
		jump := len(out) - 1
		if far(pc, in.jt) {
			out[jump].jt = a.trampoline(&out, in.jt)
		}
		if far(pc, in.jf) {
			out[jump].jf = a.trampoline(&out, in.jf)
		}
	}
	for l := range a.labels[:old] {
		a.labels[l] = moved[a.labels[l]]
	}
	a.insns = out
	return true
}

// trampoline appends to out an instruction that goes where label l
// leads, and returns a new label for it.
func (a *assembler) trampoline(out *[]asmInsn, l int32) int32 {
	t := a.insns[a.labels[l]]
	if t.code != opRetK {
		t = asmInsn{code: opJa, jt: l, jf: -1}
	}
	a.labels = append(a.labels, int32(len(*out)))
	*out = append(*out, t)
	return int32(len(a.labels) - 1)
}

// retBlock is a set of return instructions that code before it jumps to.
type retBlock struct {
	a    *assembler
	rets []ret
	buf  [8]ret // the first rets: a block has a few
}

type ret struct {
	value uint32
	label int32
}

func (a *assembler) retBlock() *retBlock {
	r := &retBlock{a: a}
	r.rets = r.buf[:0]
	return r
}

// label is the label of the return of v.
func (r *retBlock) label(v uint32) int {
	for _, x := range r.rets {
		if x.value == v {
			return int(x.label)
		}
	}
	r.rets = append(r.rets, ret{v, int32(r.a.label())})
	return int(r.rets[len(r.rets)-1].label)
}

// emitRets emits the returns of r that code jumps to.
func (a *assembler) emitRets(r *retBlock) {
	for _, x := range r.rets {
		a.bind(int(x.label))
		a.ret(x.value)
	}
}

// elem is a range of values the search tells apart: from lo up to the lo
// of the next elem, they lead to the label target, except each of the
// single values a.points[exc:excEnd], which leads to its own.
type elem struct {
	lo          uint32
	target      int32
	exc, excEnd int32
}

type point struct {
	v      uint32
	target int32
}

// maxExceptions bounds the equality checks of a leaf of the search.
const maxExceptions = 4

// compress turns ranges, merged where they have the same target, into
// elems: one value between two ranges that lead to the same place costs
// one jeq in a leaf instead of two compares in the tree. The elems are
// a's scratch, valid until the next compress.
func (a *assembler) compress(segs []seg, labelOf func(int32) int) []elem {
	a.elems, a.points = a.elems[:0], a.points[:0]
	for i := 0; i < len(segs); i++ {
		e := elem{lo: segs[i].lo, target: int32(labelOf(segs[i].target)), exc: int32(len(a.points))}
		for i+2 < len(segs) && len(a.points)-int(e.exc) < maxExceptions &&
			segs[i+2].lo == segs[i+1].lo+1 && segs[i+2].target == segs[i].target {
			a.points = append(a.points, point{segs[i+1].lo, int32(labelOf(segs[i+1].target))})
			i += 2
		}
		e.excEnd = int32(len(a.points))
		a.elems = append(a.elems, e)
	}
	return a.elems
}

// search emits a binary search over es (sorted by lo, covering every
// value) of the value in A: one jge per split, so a range costs one
// compare whatever its length.
func (a *assembler) search(es []elem) {
	if len(es) == 1 {
		a.leaf(es[0])
		return
	}
	mid := len(es) / 2
	left, right := es[:mid], es[mid:]
	ll, lnew := a.subtree(left)
	rl, rnew := a.subtree(right)
	a.jump(opJgeK, right[0].lo, rl, ll)
	if lnew {
		a.bind(ll)
		a.search(left)
	}
	if rnew {
		a.bind(rl)
		a.search(right)
	}
}

// subtree is the label a search over es starts at: the target itself when
// there is nothing left to compare, else a new label for its code.
func (a *assembler) subtree(es []elem) (l int, code bool) {
	if len(es) == 1 && es[0].exc == es[0].excEnd {
		return int(es[0].target), false
	}
	return a.label(), true
}

func (a *assembler) leaf(e elem) {
	if e.exc == e.excEnd {
		a.ja(int(e.target))
		return
	}
	for j := e.exc; j < e.excEnd; j++ {
		p := a.points[j]
		other := int(e.target)
		if j < e.excEnd-1 {
			other = a.label()
		}
		a.jump(opJeqK, p.v, int(p.target), other)
		if j < e.excEnd-1 {
			a.bind(other)
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

// interval is a range of argument values, both ends included.
type interval struct{ lo, hi uint64 }

// intervals are the values of an argument (its low 32 bits with args32)
// that meet c, as at most two intervals; ok is false for a masked
// comparison.
func intervals(c Arg, args32 bool) (in [2]interval, n int, ok bool) {
	v, top := c.Value, ^uint64(0)
	if args32 {
		v, top = uint64(uint32(v)), 0xffffffff
	}
	add := func(lo, hi uint64) {
		if lo <= hi {
			in[n] = interval{lo, hi}
			n++
		}
	}
	switch c.Op {
	case OpEQ:
		add(v, v)
	case OpNE:
		if v > 0 {
			add(0, v-1)
		}
		if v < top {
			add(v+1, top)
		}
	case OpLT:
		if v > 0 {
			add(0, v-1)
		}
	case OpLE:
		add(0, v)
	case OpGT:
		if v < top {
			add(v+1, top)
		}
	case OpGE:
		add(v, top)
	default:
		return in, 0, false
	}
	return in, n, true
}

// single is a rule with one condition.
type single struct {
	arg Arg
	ret uint32 // its action's return value
}

// valueGroup emits the longest run at the start of rules that compare the
// same argument, against values with the same high word (any with
// args32): one check of the high word, then a search over the low word's
// ranges, each leading to the return of the first rule it meets, or to
// next. It returns how many rules it took, 0 for none.
func (a *assembler) valueGroup(rules []single, args32 bool, next int, rets *retBlock) int {
	var hiWord uint32
	hiKnown := false
	n := 0
	for _, r := range rules {
		if r.arg.Index != rules[0].arg.Index {
			break
		}
		in, m, ok := intervals(r.arg, args32)
		if !ok {
			break
		}
		confined := true
		for _, iv := range in[:m] {
			h := uint32(iv.lo >> 32)
			if uint32(iv.hi>>32) != h || (hiKnown && h != hiWord) {
				confined = false
				break
			}
			hiWord, hiKnown = h, true
		}
		if !confined {
			break
		}
		n++
	}
	if n == 0 {
		return 0
	}
	// The low word's ranges: every value where some rule's interval
	// starts or ends is a boundary.
	a.spans, a.bounds = a.spans[:0], append(a.bounds[:0], 0)
	for _, r := range rules[:n] {
		in, m, _ := intervals(r.arg, args32)
		for _, iv := range in[:m] {
			a.spans = append(a.spans, span{uint32(iv.lo), uint32(iv.hi), r.ret})
			a.bounds = append(a.bounds, uint32(iv.lo))
			if uint32(iv.hi) < 0xffffffff {
				a.bounds = append(a.bounds, uint32(iv.hi)+1)
			}
		}
	}
	slices.Sort(a.bounds)
	a.bounds = slices.Compact(a.bounds)
	// The return of each range, by its first value: the rules paint
	// their intervals, the first rule last, so that it wins.
	a.rets = a.rets[:0]
	for range a.bounds {
		a.rets = append(a.rets, -1)
	}
	for j := len(a.spans) - 1; j >= 0; j-- {
		sp := a.spans[j]
		i, _ := slices.BinarySearch(a.bounds, sp.lo)
		for ; i < len(a.bounds) && a.bounds[i] <= sp.hi; i++ {
			a.rets[i] = int64(sp.ret)
		}
	}
	a.segs = a.segs[:0]
	for i, b := range a.bounds {
		t := int32(next)
		if a.rets[i] >= 0 {
			t = int32(rets.label(uint32(a.rets[i])))
		}
		if len(a.segs) == 0 || a.segs[len(a.segs)-1].target != t {
			a.segs = append(a.segs, seg{b, t})
		}
	}
	lo, hi := argOffsets(rules[0].arg.Index)
	if !args32 {
		low := a.label()
		a.ld(hi)
		a.jump(opJeqK, hiWord, low, next)
		a.bind(low)
	}
	a.ld(lo)
	a.search(a.compress(a.segs, func(l int32) int { return int(l) }))
	return n
}

// span is an interval of an argument's low word whose rule returns ret.
type span struct{ lo, hi, ret uint32 }

// cond jumps to pass when argument c.Index meets the condition, to fail
// when it does not. A 64-bit argument is compared high word first.
func (a *assembler) cond(c Arg, args32 bool, pass, fail int) {
	lo, hi := argOffsets(c.Index)
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	low := a.label() // the low word's check
	switch c.Op {
	case OpMaskedEQ:
		mlo, mhi := vlo, vhi
		wlo, whi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		if !args32 {
			a.ld(hi)
			a.emit(opAndK, mhi)
			a.jump(opJeqK, whi, low, fail)
		}
		a.bind(low)
		a.ld(lo)
		a.emit(opAndK, mlo)
		a.jump(opJeqK, wlo, pass, fail)
	case OpEQ:
		if !args32 {
			a.ld(hi)
			a.jump(opJeqK, vhi, low, fail)
		}
		a.bind(low)
		a.ld(lo)
		a.jump(opJeqK, vlo, pass, fail)
	case OpNE:
		if !args32 {
			a.ld(hi)
			a.jump(opJeqK, vhi, low, pass)
		}
		a.bind(low)
		a.ld(lo)
		a.jump(opJeqK, vlo, fail, pass)
	case OpGT, OpGE, OpLT, OpLE:
		// x < v is not x >= v, and x <= v is not x > v: the same
		// compares with the exits swapped.
		yes, no := pass, fail
		if c.Op == OpLT || c.Op == OpLE {
			yes, no = fail, pass
		}
		if !args32 {
			eq := a.label()
			a.ld(hi)
			a.jump(opJgtK, vhi, yes, eq)
			a.bind(eq)
			a.jump(opJeqK, vhi, low, no)
		}
		a.bind(low)
		a.ld(lo)
		op := uint16(opJgtK)
		if c.Op == OpGE || c.Op == OpLT {
			op = opJgeK
		}
		a.jump(op, vlo, yes, no)
	}
}
