// Command barco-mount makes a directory the root of the current mount
// namespace and execs PROGRAM inside it. See lib/mount.
package main

import (
	"barco/lib/caps"
	"barco/lib/chain"
	"barco/lib/mount"
	_ "barco/lib/oneproc"
	"barco/lib/seccomp"
)

func main() { chain.Main(mount.Command(), caps.Command, seccomp.Command) }
