package caps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTask(t *testing.T, dir, tid, capEff string) {
	t.Helper()
	status := "Name:\tbarco-caps\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n" +
		"CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t" + capEff + "\n" +
		"CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nThreads:\t3\n"
	if err := os.MkdirAll(filepath.Join(dir, tid), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tid, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckThreads(t *testing.T) {
	dir := t.TempDir()
	writeTask(t, dir, "100", "00000000a80425fb")
	writeTask(t, dir, "101", "00000000a80425fb")
	if n, err := CheckThreads(dir); n != 2 || err != nil {
		t.Errorf("agreeing threads: %d, %v", n, err)
	}
	writeTask(t, dir, "102", "000001ffffffffff")
	if _, err := CheckThreads(dir); err == nil || !strings.Contains(err.Error(), "thread 102") {
		t.Errorf("a thread with other capabilities: %v", err)
	}
}
