package seccomp

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"barco/lib/chain"
	"barco/lib/creds"
	"barco/lib/sysprog"
	"golang.org/x/sys/unix"
)

// Program is a Filter compiled to BPF, ready to load.
type Program struct {
	Instructions  []Instruction
	Skipped       []string // syscall names unknown on every architecture of the filter
	IgnoredArches []string // architectures without a code generator, foreign to this machine
	// LastSyscalls are, by architecture, the largest syscall number the
	// profile names; above it a denying filter returns ENOSYS.
	LastSyscalls map[string]uint32
	flags        uintptr // SECCOMP_FILTER_FLAG_*
}

// Compile generates the BPF program of f, with the syscall numbers of
// libseccomp's tables (BuiltinTable). libseccomp's own compiler takes tens
// of milliseconds for Docker's profile on three architectures, too much for
// every container start.
func Compile(f *Filter) (*Program, error) {
	p, err := assemble(f, builtinNumbers(f))
	if err != nil {
		return nil, err
	}
	p.flags = unix.SECCOMP_FILTER_FLAG_TSYNC
	if f.Log {
		p.flags |= unix.SECCOMP_FILTER_FLAG_LOG
	}
	if f.SpecAllow {
		p.flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
	}
	return p, nil
}

// Load sets no_new_privs if asked, and installs the program for every
// thread of the process (TSYNC: the Go runtime has several). Nothing but
// exec should follow: from here on the Go runtime itself runs under the
// filter.
func (p *Program) Load(noNewPrivs bool) error {
	// no_new_privs is set per thread: prctl and seccomp must run on the
	// same one (TSYNC then gives both to every thread). The thread stays
	// locked: exec follows.
	if err := creds.LockThread(); err != nil {
		return err
	}
	if noNewPrivs {
		if err := creds.NoNewPrivs(); err != nil {
			return err
		}
	}
	fprog := unix.SockFprog{
		Len:    uint16(len(p.Instructions)),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&p.Instructions[0])),
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.flags, uintptr(unsafe.Pointer(&fprog)))
	switch {
	case errno == 0 && r != 0:
		return fmt.Errorf("seccomp: thread %d cannot take the filter (TSYNC)", r)
	case errno == 0:
		return nil
	}
	return p.loadError(errno)
}

// loadError is the error of a seccomp SECCOMP_SET_MODE_FILTER of p that
// failed with errno.
func (p *Program) loadError(errno syscall.Errno) error {
	switch {
	case errors.Is(errno, unix.EACCES):
		return chain.Errorf("without no_new_privs, loading a filter needs CAP_SYS_ADMIN", "seccomp SECCOMP_SET_MODE_FILTER: %w", errno)
	case errors.Is(errno, unix.EINVAL) && p.flags != unix.SECCOMP_FILTER_FLAG_TSYNC:
		return chain.Errorf("does the kernel know the profile's flags?", "seccomp SECCOMP_SET_MODE_FILTER: %w", errno)
	case errors.Is(errno, unix.EINVAL), errors.Is(errno, unix.ENOSYS):
		return chain.Errorf("does the kernel have CONFIG_SECCOMP_FILTER?", "seccomp SECCOMP_SET_MODE_FILTER: %w", errno)
	}
	return fmt.Errorf("seccomp SECCOMP_SET_MODE_FILTER: %w", errno)
}

// emitLoad appends Load's work to a child's program (see chain.Inline):
// the child has one thread, which TSYNC then leaves as it is.
func (p *Program) emitLoad(b *sysprog.Builder, noNewPrivs bool) {
	if noNewPrivs {
		b.Sys("prctl PR_SET_NO_NEW_PRIVS", unix.SYS_PRCTL, sysprog.Int(unix.PR_SET_NO_NEW_PRIVS), sysprog.Int(1),
			sysprog.Int(0), sysprog.Int(0), sysprog.Int(0))
		b.Explain(func(errno syscall.Errno) error { return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", errno) })
	}
	fprog := &unix.SockFprog{
		Len:    uint16(len(p.Instructions)),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&p.Instructions[0])),
	}
	b.Sys("seccomp SECCOMP_SET_MODE_FILTER", unix.SYS_SECCOMP, sysprog.Int(unix.SECCOMP_SET_MODE_FILTER), sysprog.Imm(p.flags),
		sysprog.Ptr(unsafe.Pointer(fprog)))
	b.Explain(p.loadError)
}
