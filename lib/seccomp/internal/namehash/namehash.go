// Package namehash is the hash of syscall names that the generated index
// in lib/seccomp/zsyscalls.go is built with: the generator and the lookup
// must agree on it.
package namehash

// Sum is the 32-bit FNV-1a hash of s: a few nanoseconds for a syscall
// name, and no collisions that matter in a table twice as large as the
// names.
func Sum(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
