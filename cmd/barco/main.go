// barco builds the standard chain of barco stages from one command line
// and runs it. See `barco --help` and lib/wrapper.
package main

import (
	"barco/lib/caps"
	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/mount"
	"barco/lib/ns"
	_ "barco/lib/oneproc"
	"barco/lib/seccomp"
	"barco/lib/wrapper"
)

// The chain's first stages run in this process: a process image and a
// fork less. barco-ns re-executes this binary as its child. barco-caps
// and barco-seccomp run as steps of the child of an exec, and of a
// create's child with barco-mount's work, which this process does from a
// thread in the child's namespaces (see chain.Process.InlineSteps).
func main() {
	chain.Main(wrapper.Command(), cgroup.Command, ns.Command, chain.StepsOnly(mount.Command),
		chain.StepsOnly(caps.Command), chain.StepsOnly(seccomp.Command))
}
