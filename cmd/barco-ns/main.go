// barco-ns runs PROGRAM in new namespaces. See `barco-ns --help` and
// lib/ns.
package main

import (
	"barco/lib/chain"
	"barco/lib/ns"
)

func main() {
	st := ns.Command()
	if ns.IsChild() {
		st.RunHelper(ns.RunChild)
	}
	chain.Main(st)
}
