// barco-ns runs PROGRAM in new namespaces. See `barco-ns --help` and
// lib/ns.
package main

import (
	"barco/lib/chain"
	"barco/lib/ns"
	_ "barco/lib/startup"
)

func main() { chain.Main(ns.Command()) }
