package seccomp

import (
	"testing"
)

func benchEnv() Env {
	return Env{Arch: "amd64", Kernel: KernelVersion{Kernel: 6, Major: 1}, Caps: []string{"CAP_CHOWN", "CAP_SETUID"}}
}

func BenchmarkResolveDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Resolve(DefaultProfile(), benchEnv()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileExportDefault(b *testing.B) {
	f, err := Resolve(DefaultProfile(), benchEnv())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := Compile(f, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ExportBPF(); err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}

func BenchmarkCompileExportNativeOnly(b *testing.B) {
	f, err := Resolve(DefaultProfile(), benchEnv())
	if err != nil {
		b.Fatal(err)
	}
	f.Arches = []string{"amd64"}
	for b.Loop() {
		c, err := Compile(f, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ExportBPF(); err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}

func BenchmarkCompileExportX86(b *testing.B) {
	f, err := Resolve(DefaultProfile(), benchEnv())
	if err != nil {
		b.Fatal(err)
	}
	f.Arches = []string{"amd64", "x86"}
	for b.Loop() {
		c, err := Compile(f, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.ExportBPF(); err != nil {
			b.Fatal(err)
		}
		c.Release()
	}
}
