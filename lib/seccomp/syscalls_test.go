package seccomp

import (
	"slices"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Syscall numbers at or below this are libseccomp's markers for a syscall
// an architecture does not have.
const pseudoNotHere = -10000

// The generated tables number every syscall as the installed libseccomp
// does; if not, run `go generate ./lib/seccomp`.
func TestSyscallTableMatchesLibseccomp(t *testing.T) {
	arches := []struct {
		name string
		scmp libseccomp.ScmpArch
	}{
		{"amd64", libseccomp.ArchAMD64}, {"x32", libseccomp.ArchX32}, {"x86", libseccomp.ArchX86},
		{"arm64", libseccomp.ArchARM64}, {"arm", libseccomp.ArchARM}, {"riscv64", libseccomp.ArchRISCV64},
	}
	for _, arch := range arches {
		if a, ok := archID(arch.name); !ok || !slices.ContainsFunc(syscallNumbers[:], func(nrs [numArches]int32) bool { return nrs[a] != noSyscall }) {
			t.Errorf("no table for %s", arch.name)
		}
	}
	names := append([]string{"no_such_syscall", ""}, syscallNames[:]...)
	for _, r := range mustResolve(t, DefaultProfile(), amd64Env(capNames...)).Rules {
		names = append(names, r.Syscall)
	}
	// One name on every architecture in turn, as Assemble asks.
	f := &Filter{}
	for _, name := range names {
		f.Rules = append(f.Rules, Rule{Syscall: name})
	}
	number := builtinNumbers(f)
	bad := 0
	for i, name := range names {
		for _, arch := range arches {
			got, gotOK := BuiltinTable(arch.name, name)
			id, _ := archID(arch.name)
			if c, cOK := number(id, i); c != got || cOK != gotOK {
				t.Errorf("%s %s: builtinNumbers %d %v, BuiltinTable %d %v", arch.name, name, c, cOK, got, gotOK)
			}
			nr, err := libseccomp.GetSyscallFromNameByArch(name, arch.scmp)
			wantOK := err == nil && nr > pseudoNotHere && nr != -1
			if gotOK != wantOK || (wantOK && got != int32(nr)) {
				if bad++; bad < 20 {
					t.Errorf("%s %s: table %d %v, libseccomp %d %v", arch.name, name, got, gotOK, nr, err)
				}
			}
		}
	}
	if bad > 0 {
		major, minor, micro := libseccomp.GetLibraryVersion()
		t.Errorf("%d differences from libseccomp %d.%d.%d (tables from %s): run go generate ./lib/seccomp", bad, major, minor, micro, libseccompVersion)
	}
}
