package tests

import (
	"barco/lib/cgroup"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the barco parent cgroups that the tests made and left
// (a test that SIGKILLs barco-cgroup leaves its parent behind, as a real
// crash would), so that a test run leaves the machine as it found it.
// Parents that were there before the run stay. It also fails the run if
// any test changed the shared build/rootfs: tests write into copies.
func TestMain(m *testing.M) {
	// The tests' own parent cgroup, so that barco containers running on
	// the machine meanwhile neither see nor disturb the tests' cgroups.
	os.Setenv(cgroup.ParentEnv, testParent)
	before := barcoParents()
	rootfs, _ := filepath.Abs("../build/rootfs")
	rootfsBefore, listErr := listTree(rootfs)
	code := m.Run()
	if listErr == nil {
		if after, err := listTree(rootfs); err == nil && after != rootfsBefore {
			fmt.Fprintf(os.Stderr, "the tests changed %s:\n%s\n", rootfs, lineDiff(rootfsBefore, after))
			code = 1
		}
	}
	for p := range barcoParents() {
		if !before[p] {
			os.Remove(p) // fails, harmlessly, if something still uses it
		}
	}
	os.Exit(code)
}

// testParent is the parent cgroup of this test run (BARCO_CGROUP_PARENT).
var testParent = fmt.Sprintf("barco-test-%d", os.Getpid())

// barcoParents lists the tests' parent cgroup in every hierarchy.
func barcoParents() map[string]bool {
	found := map[string]bool{}
	for _, pattern := range []string{"/sys/fs/cgroup/" + testParent, "/sys/fs/cgroup/*/" + testParent, "/sys/fs/cgroup/*/*/*/" + testParent} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			found[m] = true
		}
	}
	return found
}
