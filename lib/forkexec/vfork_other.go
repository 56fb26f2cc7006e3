//go:build !amd64 && !arm64

package forkexec

import "syscall"

// Without an assembly rawVforkSyscall for the architecture, ForkExec is
// syscall.ForkExec.
const vforkArch = false

func vforkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	return syscall.ForkExec(path, argv, attr)
}
