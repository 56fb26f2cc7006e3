// barco-seccomp loads a Docker-compatible seccomp filter and execs PROGRAM.
// See `barco-seccomp --help` and lib/seccomp.
package main

import (
	"barco/lib/chain"
	_ "barco/lib/oneproc"
	"barco/lib/seccomp"
)

func main() { chain.Main(seccomp.Command()) }
