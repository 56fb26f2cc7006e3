// barco-ns runs PROGRAM in new namespaces. See `barco-ns --help` and
// lib/ns.
package main

import (
	"barco/lib/chain"
	"barco/lib/ns"
	_ "barco/lib/oneproc"
)

func main() { chain.Main(ns.Command()) }
