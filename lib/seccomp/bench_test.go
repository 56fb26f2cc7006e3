package seccomp

import (
	"testing"
)

func benchFilter(b *testing.B) *Filter {
	f, err := Resolve(DefaultProfile(), amd64Env())
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkResolveDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Resolve(DefaultProfile(), amd64Env()); err != nil {
			b.Fatal(err)
		}
	}
}

// What barco does at every start.
func BenchmarkCompileDefault(b *testing.B) {
	f := benchFilter(b)
	for b.Loop() {
		if _, err := Compile(f); err != nil {
			b.Fatal(err)
		}
	}
}

// What it would cost with libseccomp's compiler, as runc.
func BenchmarkLibseccompCompileDefault(b *testing.B) {
	f := benchFilter(b)
	for b.Loop() {
		c, err := compileLibseccomp(f, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ExportBPF(); err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}

func BenchmarkSyscallNumbers(b *testing.B) {
	f := benchFilter(b)
	for b.Loop() {
		for _, r := range f.Rules {
			for _, a := range f.Arches {
				BuiltinTable(a, r.Syscall)
			}
		}
	}
}
