// Command barco-cgroup runs PROGRAM in a new cgroup with resource limits,
// and removes the cgroup when PROGRAM ends. See package barco/lib/cgroup.
package main

import (
	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/ns"
	_ "barco/lib/oneproc"
)

func main() { chain.Main(cgroup.Command(), ns.Command) }
