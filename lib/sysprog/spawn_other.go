//go:build !amd64

package sysprog

import "unsafe"

// SpawnArch is whether Spawn is there for this architecture: it needs an
// assembly clone onto a stack of the child's own (spawn_amd64.s).
const SpawnArch = false

func rawCloneOnStack(trap, a1, a2 uintptr, arg unsafe.Pointer) (r1, errno uintptr) {
	return ^uintptr(0), uintptr(enosys)
}

func signalExitPC() uintptr { return 0 }
