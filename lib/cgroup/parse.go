package cgroup

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a byte count with an optional K, M, G or T suffix (powers
// of 1024, as docker and systemd read them; a trailing B or iB is allowed):
// "64M" is 67108864.
func ParseSize(s string) (int64, error) {
	text := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	mult := int64(1)
	if n := len(text); n > 0 {
		switch text[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			text = text[:n-1]
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("not a size in bytes: %q (want a positive number with an optional K, M, G or T suffix)", s)
	}
	return n * mult, nil
}

// MinMemory is the smallest memory limit barco-cgroup takes, as Docker's
// (6 MiB). Below it the chain's own stages, which start in the cgroup,
// cannot start: the kernel refuses them memory before PROGRAM runs.
const MinMemory = 6 << 20

// ParseMemory reads a --memory limit: a size (see ParseSize) of at least
// MinMemory. No limit is the absence of the option, as with Docker, which
// also refuses -1.
func ParseMemory(s string) (int64, error) {
	n, err := ParseSize(s)
	if err != nil {
		return 0, err
	}
	if n < MinMemory {
		return 0, fmt.Errorf("%q: below the minimum memory limit, %s", s, FormatSize(MinMemory))
	}
	return n, nil
}

// ParseSwap reads a --memory-swap limit: a size, or -1 (or max) for swap
// without a limit, as Docker's.
func ParseSwap(s string) (int64, error) {
	if s == "-1" || s == "max" {
		return -1, nil
	}
	return ParseSize(s)
}

// MaxNameLen bounds a cgroup name: a directory name (NAME_MAX is 255),
// with room for the record of its owner.
const MaxNameLen = 128

// ValidName checks a cgroup --name as Docker checks a container's:
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, here at most MaxNameLen long.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%q: not a name (1 to %d characters)", name, MaxNameLen)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok && (i == 0 || c != '_' && c != '.' && c != '-') {
			return fmt.Errorf("%q: not a name (a letter or digit, then letters, digits, '_', '.' and '-')", name)
		}
	}
	return nil
}

// DefaultCPUPeriod is the CFS period that --cpus is spread over, in
// microseconds, as docker uses.
const DefaultCPUPeriod = 100000

// ParseCPUs reads a fractional number of CPUs, "1.5", and returns the CFS
// quota for DefaultCPUPeriod: 150000.
func ParseCPUs(s string) (quota int64, err error) {
	f, err := strconv.ParseFloat(s, 64)
	// The kernel refuses quotas under 1 ms.
	if err != nil || math.IsNaN(f) || f < 0.01 || f > 1e6 {
		return 0, fmt.Errorf("not a number of CPUs: %q (want 0.01 or more, like 1.5)", s)
	}
	return int64(math.Round(f * DefaultCPUPeriod)), nil
}

// ParseCPUSet checks a cpuset list such as "0-3,5" and returns it in the
// kernel's own form.
func ParseCPUSet(s string) (string, error) {
	bad := fmt.Errorf("not a list of CPUs or memory nodes: %q (want e.g. 0-3,5)", s)
	if s == "" {
		return "", bad
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return "", bad
		}
	}
	return s, nil
}

// ParseWeight reads a cgroup v2 weight, 1 to 10000.
func ParseWeight(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("not a weight: %q (want 1 to 10000; 100 is the default)", s)
	}
	return n, nil
}

// ParsePids reads a maximum number of tasks.
func ParsePids(s string) (int64, error) {
	if s == "max" || s == "-1" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("not a number of tasks: %q (want 1 or more, or max)", s)
	}
	return n, nil
}

// WeightToShares converts a cgroup v2 cpu.weight to v1 cpu.shares; it is
// the inverse of the conversion runc and crun use the other way (so the
// v1 default of 1024 shares is weight 39, and weight 100 is 2597 shares).
func WeightToShares(w uint64) uint64 {
	return 2 + ((w-1)*262142)/9999
}

// WeightToBlkio converts a cgroup v2 io.weight (1-10000) to a v1
// blkio.weight (10-1000), the inverse of crun's conversion the other way.
func WeightToBlkio(w uint64) uint64 {
	return 10 + ((w-1)*990)/9999
}
