package seccomp

/*
#cgo pkg-config: libseccomp
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

// resolve numbers the n NUL-separated names on one architecture in a
// single call: one cgo crossing instead of one per name.
static int resolve(const char *arch, const char *names, int n, int *out) {
	uint32_t token = seccomp_arch_resolve_name(arch);
	if (token == 0)
		return -1;
	for (int i = 0; i < n; i++) {
		out[i] = seccomp_syscall_resolve_name_arch(token, names);
		names += strlen(names) + 1;
	}
	return 0;
}
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// libseccompArchNames are libseccomp's names for the architectures barco
// generates code for.
var libseccompArchNames = map[string]string{
	"amd64": "x86_64", "x32": "x32", "x86": "x86",
	"arm64": "aarch64", "arm": "arm", "riscv64": "riscv64",
}

// Syscall numbers at or below this are libseccomp's markers for a syscall
// the architecture does not have; -1 is its "unknown name".
const (
	pseudoNotHere = -10000
	unknownName   = -1
)

// LibseccompTable numbers the syscalls named in f on each of its
// architectures with libseccomp's tables, the maintained list of every
// architecture's syscalls, and returns them as a SyscallTable.
func LibseccompTable(f *Filter) (SyscallTable, error) {
	var names []string
	index := map[string]int{}
	for _, r := range f.Rules {
		if _, ok := index[r.Syscall]; !ok {
			index[r.Syscall] = len(names)
			names = append(names, r.Syscall)
		}
	}
	numbers := map[string][]C.int{}
	if len(names) > 0 {
		packed := C.CString(strings.Join(names, "\x00"))
		defer C.free(unsafe.Pointer(packed))
		for _, arch := range f.Arches {
			lname, ok := libseccompArchNames[arch]
			if !ok {
				continue // Assemble leaves it out
			}
			carch := C.CString(lname)
			out := make([]C.int, len(names))
			rc := C.resolve(carch, packed, C.int(len(names)), &out[0])
			C.free(unsafe.Pointer(carch))
			if rc != 0 {
				return nil, fmt.Errorf("libseccomp does not know architecture %s", lname)
			}
			numbers[arch] = out
		}
	}
	return func(arch, name string) (int32, bool) {
		i, ok := index[name]
		nrs := numbers[arch]
		if !ok || nrs == nil {
			return 0, false
		}
		nr := int32(nrs[i])
		if nr == unknownName || nr <= pseudoNotHere {
			return 0, false
		}
		return nr, true
	}, nil
}
