// barco-seccomp loads a Docker-compatible seccomp filter and execs PROGRAM.
// See `barco-seccomp --help` and lib/seccomp.
package main

import (
	"barco/lib/chain"
	"barco/lib/seccomp"
	_ "barco/lib/startup"
)

func main() { chain.Main(seccomp.Command()) }
