package seccomp

//go:generate go run ./internal/gensyscalls zsyscalls.go

import (
	"slices"
	"strings"
)

// syscallEntry is one line of a generated syscall table.
type syscallEntry struct {
	name string
	nr   int32
}

// Syscall numbers at or below this are libseccomp's markers for a syscall
// an architecture does not have.
const pseudoNotHere = -10000

// BuiltinTable numbers syscalls from zsyscalls.go, libseccomp's tables as
// generated into Go: a binary search in static data, no cgo, nothing to
// initialise at start.
func BuiltinTable(arch, name string) (int32, bool) {
	return lookup(syscallTables[arch], name)
}

// builtinTableCached is BuiltinTable for a caller that asks for one
// architecture after the other.
func builtinTableCached() SyscallTable {
	var lastArch string
	var last []syscallEntry
	return func(arch, name string) (int32, bool) {
		if arch != lastArch || last == nil {
			lastArch, last = arch, syscallTables[arch]
		}
		return lookup(last, name)
	}
}

func lookup(t []syscallEntry, name string) (int32, bool) {
	i, found := slices.BinarySearchFunc(t, name, func(e syscallEntry, n string) int { return strings.Compare(e.name, n) })
	if !found || t[i].nr <= pseudoNotHere {
		return 0, false
	}
	return t[i].nr, true
}
