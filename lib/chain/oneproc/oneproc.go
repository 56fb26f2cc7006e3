// Package oneproc drops a stage's process to one P (GOMAXPROCS 1) from
// its init, which runs before nearly every other package's: the Go
// runtime initialises packages in the order of their import paths among
// those whose imports are done, and this one imports only the runtime.
//
// Dropping as early as that is cheaper than from main: a resize with the
// main goroutine on the second P flushes that P's span caches and refills
// them on the first, about 50 page faults, and a fault on a virtual
// machine may cost 10 us (see chain.Main). A stage started by another
// starts on one P already (chain.OneProcEnv); this is for the first, the
// one a user or an engine starts. Every cmd/ imports it.
package oneproc

import "runtime"

func init() { runtime.GOMAXPROCS(1) }
