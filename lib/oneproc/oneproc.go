// Package oneproc drops a barco binary to one P (GOMAXPROCS 1) in its
// first package init. Every cmd/ imports it; a library does not, so that
// a program or test that links barco's packages keeps its own.
//
// A stage computes nothing in parallel (see chain.Main), and a stage
// started by another starts on one P already (chain.OneProcEnv); this is
// for the first, the one a user or an engine starts. It runs before
// nearly every other package's init: the Go runtime initialises packages
// in the order of their import paths among those whose imports are done,
// and this one imports only the runtime. Dropping from main costs more: a
// resize with the main goroutine on the second P flushes that P's span
// caches and refills them on the first, about 50 page faults, and a fault
// on a virtual machine may cost 10 us.
package oneproc

import "runtime"

func init() { runtime.GOMAXPROCS(1) }
