package seccomp

//go:generate go run ./internal/gensyscalls zsyscalls.go

import "barco/lib/seccomp/internal/namehash"

// archID is the index of an architecture in the generated tables.
func archID(name string) (int, bool) {
	for i, n := range syscallArches {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// syscallID is the index of name in syscallNames.
func syscallID(name string) (int, bool) {
	const mask = uint32(len(syscallIndex) - 1)
	// The index is at most half full: an empty slot ends every probe.
	for h := namehash.Sum(name); ; h++ {
		slot := syscallIndex[h&mask]
		if slot == 0 {
			return 0, false
		}
		if syscallNames[slot-1] == name {
			return int(slot - 1), true
		}
	}
}

// BuiltinTable numbers syscalls from zsyscalls.go, libseccomp's tables as
// generated into Go: static data and a hash index, no cgo, nothing to
// initialise at start.
func BuiltinTable(arch, name string) (int32, bool) {
	a, ok := archID(arch)
	if !ok {
		return 0, false
	}
	id, ok := syscallID(name)
	if !ok {
		return 0, false
	}
	nr := syscallNumbers[id][a]
	return nr, nr != noSyscall
}

// builtinNumbers numbers the rules of f from the generated tables, for a
// caller that asks for one rule on each architecture in turn: a name is
// looked up once.
func builtinNumbers(f *Filter) numberer {
	last, id, known := -1, 0, false
	return func(arch, i int) (int32, bool) {
		if i != last {
			last = i
			id, known = syscallID(f.Rules[i].Syscall)
		}
		if !known {
			return 0, false
		}
		nr := syscallNumbers[id][arch]
		return nr, nr != noSyscall
	}
}
