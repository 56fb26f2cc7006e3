package sysprog

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Files appends the steps that put files[i] on descriptor i (-1: closed)
// and close those of 0, 1 and 2 beyond files, as Go's fork child does,
// all named name. next is above every descriptor of files and keep; the
// layout moves descriptors there and up, over whatever the child has
// there. The program's own descriptors that must outlive the layout (an
// executable opened for execveat) are in keep, which Files moves out of
// its way where they are in it, and updates; Start puts its report above
// all of them. The layout is computed here, before
// the program runs: the child's descriptors are the parent's.
//
// First each descriptor in the way moves above next, keep's among them,
// then each goes onto its number: dup3, which clears close-on-exec, or,
// for one already there, F_SETFD 0.
func (b *Builder) Files(name string, files []int, next int, keep ...*int) {
	files = append([]int(nil), files...)
	// What the layout makes or closes: files' numbers, and 0 to 2.
	laid := max(len(files), 3)
	next = max(next, laid)
	for _, k := range keep {
		if *k < laid {
			b.Sys(name, unix.SYS_DUP3, Int(*k), Int(next), Int(unix.O_CLOEXEC))
			*k = next
			next++
		}
	}
	for i, fd := range files {
		if fd >= 0 && fd < i {
			b.Sys(name, unix.SYS_DUP3, Int(fd), Int(next), Int(unix.O_CLOEXEC))
			files[i] = next
			next++
		}
	}
	for i, fd := range files {
		switch {
		case fd < 0:
			b.Sys(name, unix.SYS_CLOSE, Int(i))
			b.OnAny(Next)
		case fd == i:
			b.Sys(name, unix.SYS_FCNTL, Int(i), Int(unix.F_SETFD), Int(0))
		default:
			b.Sys(name, unix.SYS_DUP3, Int(fd), Int(i), Int(0))
		}
	}
	for i := len(files); i < 3; i++ {
		b.Sys(name, unix.SYS_CLOSE, Int(i))
		b.OnAny(Next)
	}
	b.p.maxFD = max(b.p.maxFD, next)
}

// RestoreNofile appends the steps that set RLIMIT_NOFILE to lim (from
// forkexec.NofileForChild; nil appends none) unless the limit changed
// since the parent looked, as Go's fork child does: it reads the limit,
// and sets lim when the read fails or finds package syscall's raise, the
// hard limit less one. A failure to set it is ignored, as there.
func (b *Builder) RestoreNofile(lim *syscall.Rlimit) {
	if lim == nil {
		return
	}
	now := b.Bytes(int(unsafe.Sizeof(unix.Rlimit{})))
	set, done := b.Label(), b.Label()
	b.Sys("read RLIMIT_NOFILE", unix.SYS_PRLIMIT64, Int(0), Int(unix.RLIMIT_NOFILE), Int(0), Ptr(now))
	b.OnAny(set)
	b.JumpUnless(Load(now, unsafe.Offsetof(unix.Rlimit{}.Cur)), Imm(uintptr(lim.Max-1)), done)
	b.JumpUnless(Load(now, unsafe.Offsetof(unix.Rlimit{}.Max)), Imm(uintptr(lim.Max)), done)
	b.Mark(set)
	b.Sys("restore RLIMIT_NOFILE", unix.SYS_PRLIMIT64, Int(0), Int(unix.RLIMIT_NOFILE), Ptr(unsafe.Pointer(lim)), Int(0))
	b.OnAny(Next)
	b.Mark(done)
}
