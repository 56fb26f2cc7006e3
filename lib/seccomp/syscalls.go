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

// builtinNumbers numbers the rules of f from the generated tables,
// looking each name up once.
func builtinNumbers(f *Filter) numberer {
	// By rule: 0 not looked up yet, unknown, else 1 + the index in
	// syscallNames.
	const unknown = 1<<16 - 1
	ids := make([]uint16, len(f.Rules))
	return func(arch, i int) (int32, bool) {
		if ids[i] == 0 {
			ids[i] = unknown
			if id, ok := syscallID(f.Rules[i].Syscall); ok {
				ids[i] = uint16(id + 1)
			}
		}
		if ids[i] == unknown {
			return 0, false
		}
		nr := syscallNumbers[ids[i]-1][arch]
		return nr, nr != noSyscall
	}
}
