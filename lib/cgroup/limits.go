package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Limits are the resource limits of a cgroup. A zero field sets nothing.
type Limits struct {
	Memory     int64  // bytes; -1 for no limit
	MemorySwap int64  // memory plus swap in bytes, as docker's --memory-swap; -1 for no limit
	CPUQuota   int64  // microseconds of CPU time per DefaultCPUPeriod
	CPUWeight  uint64 // cgroup v2 cpu.weight, 1-10000
	CpusetCPUs string // "0-3,5"
	CpusetMems string
	Pids       int64  // tasks; -1 for no limit
	IOWeight   uint64 // cgroup v2 io.weight, 1-10000
	// Devices, when not nil, are the only devices the cgroup may use.
	Devices []DeviceRule
}

// Controllers are the controllers that l needs, by their cgroup v2 names.
// Device rules need none on cgroup v2 (they are an eBPF program) and the
// devices controller on v1.
func (l *Limits) Controllers() []string {
	var c []string
	if l.Memory != 0 || l.MemorySwap != 0 {
		c = append(c, "memory")
	}
	if l.CPUQuota != 0 || l.CPUWeight != 0 {
		c = append(c, "cpu")
	}
	if l.CpusetCPUs != "" || l.CpusetMems != "" {
		c = append(c, "cpuset")
	}
	if l.Pids != 0 {
		c = append(c, "pids")
	}
	if l.IOWeight != 0 {
		c = append(c, "io")
	}
	return c
}

// v1Name is the cgroup v1 name of a controller.
func v1Name(c string) string {
	if c == "io" {
		return "blkio"
	}
	return c
}

// ApplyV1 writes l into a cgroup v1 cgroup whose directory in the hierarchy
// of each controller is dirs[controller] ("memory", "cpu", "blkio", ...).
// A controller that l needs and dirs lacks is an error naming it.
func ApplyV1(dirs map[string]string, l *Limits) error {
	var w writer
	need := l.Controllers()
	if l.Devices != nil {
		need = append(need, "devices")
	}
	for _, c := range need {
		if dirs[v1Name(c)] == "" {
			return fmt.Errorf("controller %s: not mounted (cgroup v1)", v1Name(c))
		}
	}
	if d := dirs["memory"]; l.Memory != 0 {
		w.write(d, "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10))
		if l.MemorySwap != 0 {
			if _, err := os.Stat(filepath.Join(d, "memory.memsw.limit_in_bytes")); errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("--memory-swap: controller memory of cgroup v1 has no swap accounting here (boot with swapaccount=1)")
			}
			w.write(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(l.MemorySwap, 10))
		}
	}
	if d := dirs["cpu"]; l.CPUQuota != 0 {
		w.write(d, "cpu.cfs_period_us", strconv.Itoa(DefaultCPUPeriod))
		w.write(d, "cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuota, 10))
	}
	if l.CPUWeight != 0 {
		w.write(dirs["cpu"], "cpu.shares", strconv.FormatUint(WeightToShares(l.CPUWeight), 10))
	}
	if l.CpusetCPUs != "" {
		w.write(dirs["cpuset"], "cpuset.cpus", l.CpusetCPUs)
	}
	if l.CpusetMems != "" {
		w.write(dirs["cpuset"], "cpuset.mems", l.CpusetMems)
	}
	if l.Pids != 0 {
		w.write(dirs["pids"], "pids.max", maxOr(l.Pids))
	}
	if d := dirs["blkio"]; l.IOWeight != 0 {
		if _, err := os.Stat(filepath.Join(d, "blkio.weight")); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--io-weight: controller blkio of cgroup v1 has no blkio.weight here (it needs the BFQ I/O scheduler)")
		}
		w.write(d, "blkio.weight", strconv.FormatUint(WeightToBlkio(l.IOWeight), 10))
	}
	if d := dirs["devices"]; l.Devices != nil {
		// Deny everything, then allow the rules one by one, as runc does.
		w.write(d, "devices.deny", "a")
		for _, r := range l.Devices {
			w.write(d, "devices.allow", r.String())
		}
	}
	return w.err
}

// ApplyV2 writes l into the cgroup v2 cgroup dir. The controllers must be
// enabled in it already (see EnableControllers); a missing control file is
// reported as the controller that is not delegated.
func ApplyV2(dir string, l *Limits) error {
	if err := checkV2Controllers(dir, l.Controllers()); err != nil {
		return err
	}
	var w writer
	if l.Memory != 0 {
		w.write(dir, "memory.max", maxOr(l.Memory))
	}
	if l.MemorySwap != 0 {
		swap := int64(-1)
		if l.MemorySwap > 0 && l.Memory > 0 {
			swap = l.MemorySwap - l.Memory
		}
		w.write(dir, "memory.swap.max", maxOr(swap))
	}
	if l.CPUQuota != 0 {
		w.write(dir, "cpu.max", fmt.Sprintf("%d %d", l.CPUQuota, DefaultCPUPeriod))
	}
	if l.CPUWeight != 0 {
		w.write(dir, "cpu.weight", strconv.FormatUint(l.CPUWeight, 10))
	}
	if l.CpusetCPUs != "" {
		w.write(dir, "cpuset.cpus", l.CpusetCPUs)
	}
	if l.CpusetMems != "" {
		w.write(dir, "cpuset.mems", l.CpusetMems)
	}
	if l.Pids != 0 {
		w.write(dir, "pids.max", maxOr(l.Pids))
	}
	if l.IOWeight != 0 {
		w.write(dir, "io.weight", "default "+strconv.FormatUint(l.IOWeight, 10))
	}
	return w.err
}

// checkV2Controllers fails naming the first controller of need that dir's
// cgroup.controllers lacks.
func checkV2Controllers(dir string, need []string) error {
	if len(need) == 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	have := strings.Fields(string(data))
	for _, c := range need {
		if !contains(have, c) {
			return fmt.Errorf("controller %s: not delegated to %s (cgroup v2; it has %q)", c, filepath.Dir(dir), strings.Join(have, " "))
		}
	}
	return nil
}

// EnableControllers enables the controllers need for the children of the
// cgroup v2 cgroup parent, which must be one that barco created.
func EnableControllers(parent string, need []string) error {
	if len(need) == 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return err
	}
	have := strings.Fields(string(data))
	var plus []string
	for _, c := range need {
		if !contains(have, c) {
			return fmt.Errorf("controller %s: not delegated to %s (cgroup v2; it has %q)", c, parent, strings.Join(have, " "))
		}
		plus = append(plus, "+"+c)
	}
	var w writer
	w.write(parent, "cgroup.subtree_control", strings.Join(plus, " "))
	return w.err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func maxOr(n int64) string {
	if n < 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// writer writes control files and keeps the first error, so that a list
// of writes reads as a list.
type writer struct{ err error }

func (w *writer) write(dir, file, value string) {
	if w.err != nil {
		return
	}
	w.err = writeFile(dir, file, value)
}

// writeFile writes value to an existing control file. Control files are
// never created: a missing one means a missing controller.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, unwrapPath(err))
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readFile(dir, file string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(data)), err
}
