package sysprog

import "unsafe"

// SpawnArch is whether Spawn is there for this architecture: it needs an
// assembly clone onto a stack of the child's own (spawn_amd64.s).
const SpawnArch = true

// rawCloneOnStack makes the system call trap (clone3) whose child starts
// on the stack a1 gives it, and calls spawnChild(arg) there; it returns
// in the parent only.
func rawCloneOnStack(trap, a1, a2 uintptr, arg unsafe.Pointer) (r1, errno uintptr)

// signalExit is the handler of Builder.ExitOnSignal (spawn_amd64.s).
//
//lint:ignore U1000 a signal handler, whose address signalExitPC takes
func signalExit()

// signalExitPC is the address of signalExit.
func signalExitPC() uintptr
