// Package startup runs first in every barco binary (each cmd/ imports
// it), before nearly every other package's init: the Go runtime
// initialises packages in the order of their import paths among those
// whose imports are done, and this one imports only the runtime. So it
// sees the process as it was started, and changes it before the rest:
//
//   - It drops to one P (GOMAXPROCS 1). Dropping from main costs more: a
//     resize with the main goroutine on the second P flushes that P's span
//     caches and refills them on the first, about 50 page faults, and a
//     fault on a virtual machine may cost 10 us (see chain.Main). A stage
//     started by another starts on one P already (chain.OneProcEnv); this
//     is for the first, the one a user or an engine starts.
//   - It records RLIMIT_NOFILE before package syscall's init raises the
//     soft limit to the hard one, so that package forkexec can give a
//     child the limit this process was given, as syscall.ForkExec does
//     with the value it keeps to itself.
package startup

import "runtime"

// Nofile is RLIMIT_NOFILE as this process started, and NofileOK whether
// it could be read.
var (
	Nofile   [2]uint64 // soft, hard
	NofileOK bool
)

func init() {
	runtime.GOMAXPROCS(1)
	NofileOK = getNofile(&Nofile) == 0
}
