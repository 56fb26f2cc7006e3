package cgroup

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"1": 1, "4096": 4096, "64M": 64 << 20, "64m": 64 << 20, "2G": 2 << 30, "1k": 1024,
		"512MB": 512 << 20, "1GiB": 1 << 30, "3T": 3 << 40,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "0", "-5", "-1", "max", "1.5G", "12X", "G1", "99999999999T"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	good := map[string]int64{"1": 100000, "1.5": 150000, "0.5": 50000, "0.01": 1000, "2": 200000}
	for in, want := range good {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0.001", "-1", "abc", "NaN", "Inf"} {
		if got, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseCPUSet(t *testing.T) {
	for _, in := range []string{"0", "0-1", "0,2-3,7", "10-10"} {
		if got, err := ParseCPUSet(in); err != nil || got != in {
			t.Errorf("ParseCPUSet(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "a", "1-", "-1", "3-1", "0,,1", "0-1-2", "0 1"} {
		if _, err := ParseCPUSet(in); err == nil {
			t.Errorf("ParseCPUSet(%q): want an error", in)
		}
	}
}

func TestWeights(t *testing.T) {
	if _, err := ParseWeight("0"); err == nil {
		t.Error("weight 0 accepted")
	}
	if _, err := ParseWeight("10001"); err == nil {
		t.Error("weight 10001 accepted")
	}
	cases := []struct{ w, shares, blkio uint64 }{{1, 2, 10}, {100, 2597, 19}, {10000, 262144, 1000}}
	for _, c := range cases {
		if got := WeightToShares(c.w); got != c.shares {
			t.Errorf("WeightToShares(%d) = %d, want %d", c.w, got, c.shares)
		}
		if got := WeightToBlkio(c.w); got != c.blkio {
			t.Errorf("WeightToBlkio(%d) = %d, want %d", c.w, got, c.blkio)
		}
	}
}

func TestParsePids(t *testing.T) {
	if n, err := ParsePids("32"); err != nil || n != 32 {
		t.Errorf("ParsePids(32) = %d, %v", n, err)
	}
	if n, err := ParsePids("max"); err != nil || n != -1 {
		t.Errorf("ParsePids(max) = %d, %v", n, err)
	}
	if _, err := ParsePids("0"); err == nil {
		t.Error("pids 0 accepted")
	}
}

// --memory takes no -1 (Docker refuses it) and nothing under 6M, where
// the chain's own stages could not start; --memory-swap -1 is no limit.
func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"6M": 6 << 20, "64M": 64 << 20, "1G": 1 << 30} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"1", "4k", "128k", "256k", "5M", "-1", "max", "0"} {
		if got, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", in, got)
		}
	}
	if _, err := ParseMemory("1"); err == nil || err.Error() != `"1": below the minimum memory limit, 6M` {
		t.Errorf("ParseMemory(1): %v", err)
	}
	if n, err := ParseSwap("-1"); n != -1 || err != nil {
		t.Errorf("ParseSwap(-1) = %d, %v", n, err)
	}
}

func TestValidName(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen)
	for _, in := range []string{"web", "a", "my_box.1-2", "0abc", long} {
		if err := ValidName(in); err != nil {
			t.Errorf("ValidName(%q): %v", in, err)
		}
	}
	for _, in := range []string{"", "a\nb", "-x", ".x", "_x", "a/b", "a b", "..", long + "a", "caf\u00e9"} {
		if err := ValidName(in); err == nil {
			t.Errorf("ValidName(%q) accepted", in)
		}
	}
}
