package seccomp

import (
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// The generated tables number every syscall as the installed libseccomp
// does; if not, run `go generate ./lib/seccomp`.
func TestSyscallTableMatchesLibseccomp(t *testing.T) {
	arches := map[string]libseccomp.ScmpArch{
		"amd64": libseccomp.ArchAMD64, "x32": libseccomp.ArchX32, "x86": libseccomp.ArchX86,
		"arm64": libseccomp.ArchARM64, "arm": libseccomp.ArchARM, "riscv64": libseccomp.ArchRISCV64,
	}
	names := map[string]bool{"no_such_syscall": true}
	for _, table := range syscallTables {
		for _, e := range table {
			names[e.name] = true
		}
	}
	for _, r := range mustResolve(t, DefaultProfile(), amd64Env(capNames...)).Rules {
		names[r.Syscall] = true
	}
	bad := 0
	for arch, scmp := range arches {
		if len(syscallTables[arch]) == 0 {
			t.Errorf("no table for %s", arch)
		}
		for name := range names {
			got, gotOK := BuiltinTable(arch, name)
			nr, err := libseccomp.GetSyscallFromNameByArch(name, scmp)
			wantOK := err == nil && nr > pseudoNotHere && nr != -1
			if gotOK != wantOK || (wantOK && got != int32(nr)) {
				if bad++; bad < 20 {
					t.Errorf("%s %s: table %d %v, libseccomp %d %v", arch, name, got, gotOK, nr, err)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d differences from libseccomp %s (tables from %s): run go generate ./lib/seccomp", bad, libseccompVersion, libseccompVersion)
	}
}
