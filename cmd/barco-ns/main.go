// barco-ns runs PROGRAM in new namespaces. See `barco-ns --help` and
// lib/ns.
package main

import (
	"barco/lib/chain"
	_ "barco/lib/chain/oneproc"
	"barco/lib/ns"
)

func main() { chain.Main(ns.Command()) }
