package cgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Limits are the resource limits of a cgroup. A zero field sets nothing.
type Limits struct {
	Memory     int64  // bytes; -1 for no limit
	MemorySwap int64  // memory plus swap in bytes, as docker's --memory-swap; -1 for no limit
	CPUQuota   int64  // microseconds of CPU time per CPUPeriod
	CPUPeriod  uint64 // microseconds; 0 for DefaultCPUPeriod
	CPUWeight  uint64 // cgroup v2 cpu.weight, 1-10000
	CPUShares  uint64 // cgroup v1 cpu.shares, 2-262144, as given (an OCI config's); beats CPUWeight
	CpusetCPUs string // "0-3,5"
	CpusetMems string
	Pids       int64  // tasks; -1 for no limit
	IOWeight   uint64 // cgroup v2 io.weight, 1-10000
	// MemoryReservation is a soft limit in bytes: v1 memory.soft_limit_in_bytes,
	// v2 memory.low.
	MemoryReservation int64
	// MemorySwappiness, when set, is v1 memory.swappiness (0-100); v2 has
	// none.
	MemorySwappiness *uint64
	// OOMKillDisable turns the kernel's OOM killer off for the cgroup
	// (v1 memory.oom_control); v2 has no such switch.
	OOMKillDisable bool
	// Devices, when not nil, are the only devices the cgroup may use.
	Devices []DeviceRule
}

// Controllers are the controllers that l needs, by their cgroup v2 names.
// Device rules need none on cgroup v2 (they are an eBPF program) and the
// devices controller on v1.
func (l *Limits) Controllers() []string {
	var c []string
	if l.Memory != 0 || l.MemorySwap != 0 || l.MemoryReservation != 0 || l.MemorySwappiness != nil || l.OOMKillDisable {
		c = append(c, "memory")
	}
	if l.CPUQuota != 0 || l.CPUWeight != 0 || l.CPUShares != 0 {
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

// Write is one value written to one control file.
type Write struct {
	Dir, File, Value string
}

func (w Write) String() string { return w.File + "=" + w.Value }

// ApplyV1 writes l, logging each write on log, into a cgroup v1 cgroup whose directory in the hierarchy
// of each controller is dirs[controller] ("memory", "cpu", "blkio", ...).
func ApplyV1(dirs map[string]string, l *Limits, log *chain.Log) error {
	ws, err := PlanV1(dirs, l)
	if err != nil {
		return err
	}
	return apply(ws, log)
}

// PlanV1 is the list of writes that ApplyV1 makes, in order. A controller
// that l needs and dirs lacks is an error naming it, as is a control file
// the kernel does not offer.
func PlanV1(dirs map[string]string, l *Limits) ([]Write, error) {
	need := l.Controllers()
	if l.Devices != nil {
		need = append(need, "devices")
	}
	for _, c := range need {
		if dirs[v1Name(c)] == "" {
			return nil, fmt.Errorf("controller %s: not mounted (cgroup v1)", v1Name(c))
		}
	}
	var ws []Write
	add := func(ctrl, file, value string) { ws = append(ws, Write{dirs[ctrl], file, value}) }
	if l.Memory != 0 {
		// The memory limit first: memsw may never be below it.
		add("memory", "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10))
	}
	if l.MemorySwap != 0 {
		if !exists(dirs["memory"], "memory.memsw.limit_in_bytes") {
			return nil, fmt.Errorf("--memory-swap: controller memory of cgroup v1 has no swap accounting here (boot with swapaccount=1)")
		}
		add("memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(l.MemorySwap, 10))
	}
	if l.MemoryReservation != 0 {
		add("memory", "memory.soft_limit_in_bytes", strconv.FormatInt(l.MemoryReservation, 10))
	}
	if l.MemorySwappiness != nil {
		add("memory", "memory.swappiness", strconv.FormatUint(*l.MemorySwappiness, 10))
	}
	if l.OOMKillDisable {
		add("memory", "memory.oom_control", "1")
	}
	if l.CPUQuota != 0 {
		add("cpu", "cpu.cfs_period_us", strconv.FormatUint(l.period(), 10))
		add("cpu", "cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuota, 10))
	}
	switch {
	case l.CPUShares != 0:
		add("cpu", "cpu.shares", strconv.FormatUint(l.CPUShares, 10))
	case l.CPUWeight != 0:
		add("cpu", "cpu.shares", strconv.FormatUint(WeightToShares(l.CPUWeight), 10))
	}
	if l.CpusetCPUs != "" {
		add("cpuset", "cpuset.cpus", l.CpusetCPUs)
	}
	if l.CpusetMems != "" {
		add("cpuset", "cpuset.mems", l.CpusetMems)
	}
	if l.Pids != 0 {
		add("pids", "pids.max", maxOr(l.Pids))
	}
	if l.IOWeight != 0 {
		if !exists(dirs["blkio"], "blkio.weight") {
			return nil, fmt.Errorf("--io-weight: controller blkio of cgroup v1 has no blkio.weight here (it needs the BFQ I/O scheduler)")
		}
		add("blkio", "blkio.weight", strconv.FormatUint(WeightToBlkio(l.IOWeight), 10))
	}
	if l.Devices != nil {
		// Deny everything, then allow the rules one by one, as runc does.
		add("devices", "devices.deny", "a")
		for _, r := range l.Devices {
			if r.Type == 'a' {
				// v1 reads any line starting with "a" as "allow every
				// device": write the rule once per type instead.
				r.Type = 'c'
				add("devices", "devices.allow", r.String())
				r.Type = 'b'
			}
			add("devices", "devices.allow", r.String())
		}
	}
	return ws, nil
}

// ApplyV2 writes l, logging each write on log, into the cgroup v2 cgroup dir. The controllers must be
// enabled in it already (see EnableControllers); one that is not is an
// error naming it.
func ApplyV2(dir string, l *Limits, log *chain.Log) error {
	if err := checkV2Controllers(dir, l.Controllers()); err != nil {
		return err
	}
	ws, err := PlanV2(dir, l)
	if err != nil {
		return err
	}
	return apply(ws, log)
}

// PlanV2 is the list of writes that ApplyV2 makes, in order. Device rules
// are not among them: on v2 they are an eBPF program.
func PlanV2(dir string, l *Limits) ([]Write, error) {
	switch {
	case l.MemorySwappiness != nil:
		return nil, errors.New("memory swappiness: cgroup v2 has none")
	case l.OOMKillDisable:
		return nil, errors.New("disabling the OOM killer: cgroup v2 has no such switch")
	}
	var ws []Write
	add := func(file, value string) { ws = append(ws, Write{dir, file, value}) }
	if l.Memory != 0 {
		add("memory.max", maxOr(l.Memory))
	}
	if l.MemorySwap != 0 {
		// v2 limits swap alone, not memory plus swap.
		swap := int64(-1)
		if l.MemorySwap > 0 && l.Memory > 0 {
			swap = l.MemorySwap - l.Memory
		}
		add("memory.swap.max", maxOr(swap))
	}
	if l.CPUQuota != 0 {
		add("cpu.max", fmt.Sprintf("%d %d", l.CPUQuota, l.period()))
	}
	switch {
	case l.CPUShares != 0:
		// cpu.shares 2-262144 to cpu.weight 1-10000, as runc converts.
		add("cpu.weight", strconv.FormatUint(1+((l.CPUShares-2)*9999)/262142, 10))
	case l.CPUWeight != 0:
		add("cpu.weight", strconv.FormatUint(l.CPUWeight, 10))
	}
	if l.CpusetCPUs != "" {
		add("cpuset.cpus", l.CpusetCPUs)
	}
	if l.CpusetMems != "" {
		add("cpuset.mems", l.CpusetMems)
	}
	if l.Pids != 0 {
		add("pids.max", maxOr(l.Pids))
	}
	if l.IOWeight != 0 {
		add("io.weight", "default "+strconv.FormatUint(l.IOWeight, 10))
	}
	if l.MemoryReservation != 0 {
		add("memory.low", maxOr(l.MemoryReservation))
	}
	return ws, nil
}

// apply makes the writes ws, in order. Consecutive writes to one file
// (the device rules, one per write, as the kernel reads them) share one
// open: opening a cgroup file costs as much as writing it.
func apply(ws []Write, log *chain.Log) error {
	for i := 0; i < len(ws); {
		j := i + 1
		for j < len(ws) && ws[j].Dir == ws[i].Dir && ws[j].File == ws[i].File {
			j++
		}
		values := make([]string, 0, j-i)
		for _, w := range ws[i:j] {
			log.Debugf("write %q to %s", w.Value, filepath.Join(w.Dir, w.File))
			values = append(values, w.Value)
		}
		if err := writeFile(ws[i].Dir, ws[i].File, values...); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// checkV2Controllers fails naming the first controller of need that dir's
// cgroup.controllers lacks.
func checkV2Controllers(dir string, need []string) error {
	if len(need) == 0 {
		return nil
	}
	data, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	have := strings.Fields(data)
	for _, c := range need {
		if !contains(have, c) {
			return fmt.Errorf("controller %s: not delegated to %s (cgroup v2; it has %q)", c, filepath.Dir(dir), strings.Join(have, " "))
		}
	}
	return nil
}

// EnableControllers enables the controllers need for the children of the
// cgroup v2 cgroup parent. It writes cgroup.subtree_control only when a
// controller is missing there, and never that of the hierarchy's root
// (root): that belongs to the machine.
func EnableControllers(parent, root string, need []string) error {
	if len(need) == 0 {
		return nil
	}
	have, err := readFile(parent, "cgroup.controllers")
	if err != nil {
		return err
	}
	enabled, err := readFile(parent, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	var plus []string
	for _, c := range need {
		switch {
		case contains(strings.Fields(enabled), c):
		case !contains(strings.Fields(have), c):
			return fmt.Errorf("controller %s: not delegated to %s (cgroup v2; it has %q)", c, parent, have)
		default:
			plus = append(plus, "+"+c)
		}
	}
	if len(plus) == 0 {
		return nil
	}
	if filepath.Clean(parent) == filepath.Clean(root) {
		return fmt.Errorf("controller %s: not enabled in %s/cgroup.subtree_control (cgroup v2; barco does not change the root's)", plus[0][1:], parent)
	}
	return writeFile(parent, "cgroup.subtree_control", strings.Join(plus, " "))
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

// writeFile writes each of values to an existing control file, one write
// each, through one open. Control files are never created: a missing one
// means a missing controller. It makes plain system calls: os.OpenFile
// would also register the descriptor with the runtime's poller, which a
// control file has no use for, at two more system calls per file.
func writeFile(dir, file string, values ...string) error {
	p := dir + "/" + file
	fd, err := openRetry(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	for _, v := range values {
		n, err := writeRetry(fd, v)
		if err == nil && n != len(v) {
			err = io.ErrShortWrite
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("write %q to %s: %w", v, p, err)
		}
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", p, err)
	}
	return nil
}

// readFile reads a control file, without its surrounding space, with
// plain system calls as writeFile does.
func readFile(dir, file string) (string, error) {
	data, err := chain.ReadFile(dir + "/" + file)
	return strings.TrimSpace(string(data)), err
}

// openRetry and writeRetry retry the call a signal interrupted, as the os
// package does.
func openRetry(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func writeRetry(fd int, s string) (int, error) {
	for {
		n, err := unix.Write(fd, []byte(s))
		if err != unix.EINTR {
			return n, err
		}
	}
}

// period is the CFS period the quota is for.
func (l *Limits) period() uint64 {
	if l.CPUPeriod != 0 {
		return l.CPUPeriod
	}
	return DefaultCPUPeriod
}
