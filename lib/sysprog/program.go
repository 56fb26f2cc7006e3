// Package sysprog runs a program of system calls that was built before
// it runs: a list of steps, each a system call whose arguments are known
// values, memory the program holds, or the results of earlier steps, and
// whose errno may pick the step that comes next.
//
// Such a program can run in a child between its fork and its exec, where
// a Go program may only make raw system calls on memory prepared before
// the fork (no allocation, no lock, no stack growth), as Go's own
// syscall.forkAndExecInChild does: Start clones a child that runs it, Run
// runs it in the calling process. A step that fails names itself in the
// error, so that a caller can say what went wrong as its own code would.
//
// There is no loop and no backward jump: a program ends after at most as
// many steps as it has. Builder.Program checks every slot, jump and
// memory reference before a program can run, since a child cannot recover
// from a panic.
package sysprog

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// Program is a built list of steps; see Builder. A Program may run once:
// its steps' results are kept in it.
type Program struct {
	steps  []step
	names  []string                    // what each step does, for its error
	errs   []func(syscall.Errno) error // the error of a step that fails, where the builder gave one
	wraps  []func(error) error         // what each step's error is wrapped in, or nil (WrapErrors)
	slots  []uintptr                   // each step's result, written as it runs
	errnos []uintptr                   // the errno each step branched on, written as it runs
	status int                         // a child's exit status when a step fails
	maxFD  int                         // the highest descriptor its steps may lay out
	texts  [][]byte                    // each errno's text, by number, for opWriteErrno
	// next is the program a child of Spawn runs after this one (Then).
	next *Program
	// childOnly: steps that would undo the caller's own runtime
	// (DefaultSignals), which Run refuses.
	childOnly bool
}

type op uint8

const (
	opSys          op = iota + 1 // a system call
	opJumpUnless                 // go to the step's target unless its first argument, masked, equals its second
	opResetSignals               // the runtime's signal handlers to default, in a child only
	opFail                       // fail with the errno nr
	opStore                      // write its second argument at its first, a Ptr
	opCloseReport                // close the report pipe, in a child only: no failure is reported after
	opWriteErrno                 // write the text of the errno its second argument holds on the descriptor of its first
	opCloseFrom                  // close every descriptor from its first argument up, but the report pipe
	opExitOnSignal               // the handler that exits of the signal nr, in a child only
)

// step is one step of a program. It holds no Go pointer but the memory
// its arguments refer to, which a child only reads.
type step struct {
	op   op
	nr   uintptr
	args [6]Arg
	on   [3]branch // where an errno leads; an errno not here fails the step
	to   int       // opJumpUnless's target
	mask uintptr   // opJumpUnless's mask of its first argument
	// blocking: Run makes the call through the runtime (syscall.Syscall6),
	// which lets other goroutines run meanwhile; a child makes every call
	// raw, and so does Run the others, which holds the P but spares the
	// thread switches that a call the runtime knows of may cost when it
	// lasts (see README, Benchmark).
	blocking bool
}

// branch sends an errno (or any, anyErrno) to the step to.
type branch struct {
	errno syscall.Errno
	to    int
}

const anyErrno = ^syscall.Errno(0)

type argKind uint8

const (
	kindImm   argKind = iota // v
	kindPtr                  // the address p
	kindSlot                 // the result of step v
	kindLoad                 // the word at p, read when the step runs
	kindErrno                // the errno step v branched on
)

// Arg is an argument of a step.
type Arg struct {
	kind argKind
	v    uintptr
	p    unsafe.Pointer
}

// Imm is the value v.
func Imm(v uintptr) Arg { return Arg{kind: kindImm, v: v} }

// Int is the value v, a descriptor or a flag.
func Int(v int) Arg { return Arg{kind: kindImm, v: uintptr(v)} }

// Ptr is the address of memory the caller made for the program, which the
// program keeps alive while it runs. The Go heap does not move objects.
func Ptr(p unsafe.Pointer) Arg { return Arg{kind: kindPtr, p: p} }

// Load is the machine word at p+off, read when the step runs.
func Load(p unsafe.Pointer, off uintptr) Arg { return Arg{kind: kindLoad, p: unsafe.Add(p, off)} }

// CString is a NUL-terminated copy of s.
func CString(s string) (Arg, error) {
	p, err := syscall.BytePtrFromString(s)
	if err != nil {
		return Arg{}, err
	}
	return Ptr(unsafe.Pointer(p)), nil
}

// FixedString is CString of a string the code fixes (a path such as
// "/dev" or ""), which has no NUL; one with a NUL is a bug, and panics.
func FixedString(s string) Arg {
	a, err := CString(s)
	if err != nil {
		panic(fmt.Sprintf("sysprog.FixedString(%q): %v", s, err))
	}
	return a
}

// CStrings is a nil-terminated array of NUL-terminated copies of ss, as
// execve takes argv and envp.
func CStrings(ss []string) (Arg, error) {
	ps, err := syscall.SlicePtrFromStrings(ss)
	if err != nil {
		return Arg{}, err
	}
	return Ptr(unsafe.Pointer(&ps[0])), nil
}

// Ref is a step whose result a later step may take, with Result, and
// whose errno, when it branched on one, the caller may read after the
// run, with Program.Errno.
type Ref struct{ step int }

// Errno is the errno on which the step r branched when the program ran,
// or 0: it succeeded, failed the program, or did not run.
func (p *Program) Errno(r Ref) syscall.Errno { return syscall.Errno(p.errnos[r.step]) }

// Value is the result of the step r when the program ran: a descriptor
// it opened, for the caller to keep or close; NoResult if it did not
// run, or failed.
func (p *Program) Value(r Ref) uintptr { return p.slots[r.step] }

// NoResult is the result of a step that did not run, or failed: -1 as an
// int, no descriptor. Not 0, which is one (a stage may start with its
// standard input closed).
const NoResult = ^uintptr(0)

// Result is the result of the step r, as an argument of a later step.
func (r Ref) Result() Arg { return Arg{kind: kindSlot, v: uintptr(r.step)} }

// ErrnoOf is the errno on which the step r branched (see On), 0 if it did
// not, as an argument of a later step: Store keeps it for the parent.
func ErrnoOf(r Ref) Arg { return Arg{kind: kindErrno, v: uintptr(r.step)} }

// Label is a place in a program that a branch or a jump may go to, marked
// with Builder.Mark after the steps that go to it. Next is the step after
// the one that branches.
type Label struct{ id int }

// Next, as where an errno leads, ignores it.
var Next = Label{id: -1}

// StepError is a step that failed, named as the builder named it.
type StepError struct {
	Step string
	Err  syscall.Errno
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Builder makes a Program. Its methods append steps; the first error,
// such as a string with a NUL, is kept and returned by Program.
type Builder struct {
	p      Program
	labels []int // step of each label, -1 until marked
	refs   []labelRef
	err    error
	wrap   func(error) error // see WrapErrors
	// exitAction is ExitOnSignal's struct sigaction, once made.
	exitAction unsafe.Pointer
}

// labelRef is a branch or jump of step, to be set to the label's step.
type labelRef struct {
	step, branch int // branch -1: the step's jump target
	label        int
}

// Sys appends the system call nr with args, and returns it for Result.
// name says what it does, for the error when it fails: "join the mount
// namespace", "mount /proc".
func (b *Builder) Sys(name string, nr uintptr, args ...Arg) Ref {
	s := step{op: opSys, nr: nr}
	if len(args) > len(s.args) {
		b.fail(fmt.Errorf("step %q: %d arguments, at most %d", name, len(args), len(s.args)))
		args = args[:len(s.args)]
	}
	copy(s.args[:], args)
	return b.add(name, s)
}

// On sends the errno of the last step to l instead of failing it: Next
// ignores it.
func (b *Builder) On(errno syscall.Errno, l Label) {
	b.on(errno, l)
}

// OnAny sends every errno of the last step to l.
func (b *Builder) OnAny(l Label) {
	b.on(anyErrno, l)
}

func (b *Builder) on(errno syscall.Errno, l Label) {
	if errno == 0 {
		b.fail(errors.New("a branch on errno 0"))
		return
	}
	last := len(b.p.steps) - 1
	if last < 0 || b.p.steps[last].op != opSys {
		b.fail(errors.New("a branch on an errno follows a system call"))
		return
	}
	s := &b.p.steps[last]
	for i := range s.on {
		if s.on[i].errno == 0 {
			s.on[i] = branch{errno: errno, to: last + 1}
			if l != Next {
				b.refs = append(b.refs, labelRef{step: last, branch: i, label: l.id})
			}
			return
		}
	}
	b.fail(fmt.Errorf("step %q: more than %d branches", b.p.names[last], len(s.on)))
}

// Blocking marks the last step as a system call that may wait on another
// process (a FUSE or NFS server, a peer), which Run then makes through
// the runtime.
func (b *Builder) Blocking() {
	if last := len(b.p.steps) - 1; last >= 0 {
		b.p.steps[last].blocking = true
	}
}

// Explain makes the error of the last step, when it fails, f(errno)
// instead of a *StepError: the error the caller's own code would return.
func (b *Builder) Explain(f func(syscall.Errno) error) {
	if last := len(b.p.steps) - 1; last >= 0 {
		b.p.errs[last] = f
	}
}

// Jump goes to l.
func (b *Builder) Jump(l Label) {
	b.JumpUnless(Imm(0), Imm(1), l)
}

// JumpUnless goes to l unless x equals y.
func (b *Builder) JumpUnless(x, y Arg, l Label) {
	b.JumpUnlessMasked(x, ^uintptr(0), y, l)
}

// JumpUnlessMasked goes to l unless x&mask equals y: a field of a
// structure a system call filled, read as a word (little-endian: the
// field's bytes are the word's low ones).
func (b *Builder) JumpUnlessMasked(x Arg, mask uintptr, y Arg, l Label) {
	s := step{op: opJumpUnless, mask: mask}
	s.args[0], s.args[1] = x, y
	b.add("compare", s)
	b.refs = append(b.refs, labelRef{step: len(b.p.steps) - 1, branch: -1, label: l.id})
}

// Fail appends a step that fails with errno, named name: where a jump
// leads when what the program found is not what it needs.
func (b *Builder) Fail(name string, errno syscall.Errno) {
	b.add(name, step{op: opFail, nr: uintptr(errno)})
}

// Store appends a step that writes the value of v (a word: an Imm, a
// result, an errno, the address of a Ptr) at p, memory the caller made for
// the program (Bytes): a mark of where the program went, or a value a
// later step Loads. A child that Start runs writes its parent's memory
// where SharedMemory is true, and its own copy elsewhere.
func (b *Builder) Store(p unsafe.Pointer, v Arg) {
	s := step{op: opStore}
	s.args[0], s.args[1] = Ptr(p), v
	b.add("store", s)
}

// ResetSignals appends what Go's own fork child does before the steps
// that may take a signal: the runtime's handlers back to their defaults
// and the signal mask restored. In a program that Run runs, it does
// nothing: the caller's runtime keeps its handlers. It is for a child of
// Start, whose parent waits: a child of Spawn takes DefaultSignals.
func (b *Builder) ResetSignals() {
	b.add("reset the signal handlers", step{op: opResetSignals})
}

// ExitOnSignal appends, for a child of Spawn, the handler of sig that
// ends it with status 128+sig until its exec, which resets the handler. A
// child that is the init of a new pid namespace ignores every signal it
// leaves at its default action but SIGKILL and SIGSTOP from outside, as
// the kernel protects such an init: so a child that waits (at a start
// gate) would ignore the SIGTERM that is to end it, where a Go process
// has the runtime's handler. It comes after ResetSignals, which resets
// it (or DefaultSignals, and before the unblocking that returns); in a
// program that Run runs, it does nothing.
func (b *Builder) ExitOnSignal(sig syscall.Signal) {
	if !SpawnArch {
		b.fail(fmt.Errorf("a handler of %v: no Spawn on this architecture", sig))
		return
	}
	if b.exitAction == nil {
		// struct sigaction of rt_sigaction(2): the handler, its flags,
		// its restorer (x86-64 needs one), the signals it blocks (all).
		act := (*[4]uintptr)(b.Bytes(32))
		act[0], act[1], act[2], act[3] = signalExitPC(), saRestorer, signalExitPC(), ^uintptr(0)
		b.exitAction = unsafe.Pointer(act)
	}
	b.add("handle "+sig.String(), step{op: opExitOnSignal, nr: uintptr(sig), args: [6]Arg{Ptr(b.exitAction)}})
}

// saRestorer is SA_RESTORER of rt_sigaction(2).
const saRestorer = 0x04000000

// CloseReport appends the close of a child's report pipe (Start's,
// Spawn's), whose end tells the parent that the child has come this far:
// a failure after it is the child's to tell, on its stderr (WriteErrno),
// and its parent's Wait has returned.
func (b *Builder) CloseReport() {
	b.add("close the report pipe", step{op: opCloseReport})
}

// CloseFrom appends the close of every descriptor from fd up, but a
// child's report pipe: a child that runs on after its clone (Spawn) holds
// a copy of every descriptor of its parent, close-on-exec or not, among
// them ends of pipes whose end of file the parent or the child waits for,
// and descriptors that hold locks (flock).
func (b *Builder) CloseFrom(fd int) {
	b.add("close the inherited descriptors", step{op: opCloseFrom, args: [6]Arg{Int(fd)}})
}

// WriteErrno appends the write, on fd, of the text of the errno that the
// system call r branched on (as syscall.Errno's Error), for a message
// that a child writes itself once its report pipe is closed.
func (b *Builder) WriteErrno(fd int, r Ref) {
	b.p.texts = errnoTexts()
	b.add("write an error", step{op: opWriteErrno, args: [6]Arg{Int(fd), ErrnoOf(r)}})
}

// errnoTexts are the texts of the errnos of Linux, by number.
func errnoTexts() [][]byte {
	texts := make([][]byte, 134)
	for i := range texts {
		texts[i] = []byte(syscall.Errno(i).Error())
	}
	return texts
}

// Label returns a new label, to be marked once.
func (b *Builder) Label() Label {
	b.labels = append(b.labels, -1)
	return Label{id: len(b.labels) - 1}
}

// Mark places l before the next step appended.
func (b *Builder) Mark(l Label) {
	if l.id < 0 || l.id >= len(b.labels) || b.labels[l.id] >= 0 {
		b.fail(errors.New("a label marked twice, or not made by this builder"))
		return
	}
	b.labels[l.id] = len(b.p.steps)
}

// Bytes is n bytes of zeroed memory that the program's steps may read and
// write (a system call's result structure).
func (b *Builder) Bytes(n int) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(make([]byte, max(n, 8))))
}

func (b *Builder) add(name string, s step) Ref {
	b.p.steps = append(b.p.steps, s)
	b.p.names = append(b.p.names, name)
	b.p.errs = append(b.p.errs, nil)
	b.p.wraps = append(b.p.wraps, b.wrap)
	return Ref{step: len(b.p.steps) - 1}
}

// WrapErrors makes the error of every step appended from now on, when it
// fails, f of what it would be: a program built of several stages' work
// names the stage a failure belongs to. nil stops the wrapping.
func (b *Builder) WrapErrors(f func(error) error) { b.wrap = f }

func (b *Builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Program returns the program built, whose child exits with status when
// a step fails, once every label is resolved and every reference checked.
// It ends the builder's use.
func (b *Builder) Program(status int) (*Program, error) {
	if b.err != nil {
		return nil, b.err
	}
	p := b.p
	for _, r := range b.refs {
		to := -1
		if r.label >= 0 && r.label < len(b.labels) {
			to = b.labels[r.label]
		}
		if to < 0 {
			return nil, fmt.Errorf("step %d (%s): a label never marked", r.step, p.names[r.step])
		}
		if r.branch < 0 {
			p.steps[r.step].to = to
		} else {
			p.steps[r.step].on[r.branch].to = to
		}
	}
	p.slots = make([]uintptr, len(p.steps))
	for i := range p.slots {
		p.slots[i] = NoResult
	}
	p.errnos = make([]uintptr, len(p.steps))
	p.status = status
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// validate proves that running p indexes nothing out of range and ends:
// every target is after its step and at most the end, every result taken
// is an earlier system call's, every memory reference is set.
func (p *Program) validate() error {
	for i, s := range p.steps {
		bad := func(what string) error { return fmt.Errorf("step %d (%s): %s", i, p.names[i], what) }
		switch s.op {
		case opSys, opJumpUnless, opResetSignals, opFail, opCloseReport, opWriteErrno, opCloseFrom, opExitOnSignal:
		case opStore:
			if s.args[0].kind != kindPtr {
				return bad("a store not to memory")
			}
		default:
			return bad("no such operation")
		}
		for _, br := range s.on {
			if br.errno != 0 && (br.to <= i || br.to > len(p.steps)) {
				return bad("a branch that does not go forward within the program")
			}
		}
		if s.op == opJumpUnless && (s.to <= i || s.to > len(p.steps)) {
			return bad("a jump that does not go forward within the program")
		}
		for _, a := range s.args {
			switch a.kind {
			case kindImm:
			case kindPtr, kindLoad:
				if a.p == nil {
					return bad("a nil memory reference")
				}
			case kindSlot, kindErrno:
				if a.v >= uintptr(i) || p.steps[a.v].op != opSys {
					return bad("a result taken from a step that is not an earlier system call")
				}
			default:
				return bad("an argument of no kind")
			}
		}
	}
	return nil
}
