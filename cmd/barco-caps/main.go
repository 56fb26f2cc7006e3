// barco-caps sets the user, groups and capabilities of the process and
// execs PROGRAM. See `barco-caps --help` and lib/caps.
package main

import (
	"barco/lib/caps"
	"barco/lib/chain"
	_ "barco/lib/oneproc"
	"barco/lib/seccomp"
)

func main() { chain.Main(caps.Command(), seccomp.Command) }
