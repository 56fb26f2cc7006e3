// Package startup records what this process was started with, before the
// packages that change it run their init: the Go runtime initialises
// packages in the order of their import paths among those whose imports
// are done, and this one imports only the runtime, so its init runs before
// package syscall's.
//
// Package syscall's init raises the soft RLIMIT_NOFILE to the hard limit
// and keeps the original to itself, for the children syscall.ForkExec
// starts and the programs syscall.Exec runs. barco starts and execs some
// by raw system calls (package forkexec, the chain's exec of PROGRAM),
// which give the original back from here. On an architecture without the
// assembly read (other than amd64 and arm64), nothing is recorded, and
// those programs get the raised limit.
package startup

// Nofile is RLIMIT_NOFILE as this process started, and NofileOK whether
// it could be read.
var (
	Nofile   [2]uint64 // soft, hard
	NofileOK bool
)

func init() {
	NofileOK = getNofile(&Nofile) == 0
}
