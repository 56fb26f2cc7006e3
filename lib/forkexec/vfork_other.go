//go:build !amd64 && !arm64

package forkexec

import "syscall"

// Without an assembly RawVforkSyscall for the architecture, ForkExec is
// syscall.ForkExec.
const vforkArch = false

// VforkArch is whether RawVforkSyscall is there for this architecture.
const VforkArch = vforkArch

// RawVforkSyscall fails: there is none for this architecture.
func RawVforkSyscall(trap, a1, a2, a3 uintptr) (r1, errno uintptr) {
	return ^uintptr(0), uintptr(syscall.ENOSYS)
}

func vforkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	return syscall.ForkExec(path, argv, attr)
}
