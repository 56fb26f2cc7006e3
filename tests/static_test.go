package tests

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"barco/lib/testutil"
)

// Every binary must run in a root filesystem with no libc, as the stages
// that cross pivot_root do.
func TestBinariesAreStatic(t *testing.T) {
	testutil.RequireRoot(t)
	bins, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "bin", "*"))
	if len(bins) == 0 {
		t.Fatal("nothing built in bin/ (run make)")
	}
	rootfs := t.TempDir()
	if out, err := exec.Command("cp", "-a", testutil.Rootfs(t)+"/.", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "lib")); err == nil {
		t.Fatal("the test rootfs has a /lib: it must have no libc")
	}
	for _, bin := range bins {
		f, err := elf.Open(bin)
		if err != nil {
			t.Errorf("%s: %v", bin, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", bin)
			}
		}
		f.Close()
		data, _ := os.ReadFile(bin)
		inside := filepath.Join(rootfs, filepath.Base(bin))
		os.WriteFile(inside, data, 0o755)
		out, err := exec.Command("chroot", rootfs, "/"+filepath.Base(bin), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), filepath.Base(bin)) {
			t.Errorf("%s --version in a rootfs without libc: %q, %v", filepath.Base(bin), out, err)
		}
	}
}
