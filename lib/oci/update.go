package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/jsondecode"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// updateOptions are update's options, runc's: --resources FILE (or - for
// stdin) and one option per common limit, which overrides the file's.
type updateOptions struct {
	resources string
	set       map[string]string // option name -> value, as given
}

var updateFlags = []string{"memory", "memory-swap", "memory-reservation", "kernel-memory", "kernel-memory-tcp",
	"cpu-shares", "cpu-share", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime",
	"cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight"}

func (o *updateOptions) declare(opts *chain.Options) {
	o.set = map[string]string{}
	opts.String(&o.resources, "resources", 'r', "FILE", "")
	for _, name := range updateFlags {
		opts.Func(name, 0, "VALUE", "", func(v string) error {
			o.set[name] = v
			return nil
		})
	}
}

// updateResources reads the resources to set: the --resources JSON (from
// stdin with -), then each option. Zeros mean unset, as the engines
// write them.
func updateResources(o updateOptions, stdin io.Reader) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if o.resources != "" {
		var data []byte
		var err error
		if o.resources == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(o.resources)
		}
		if err != nil {
			return nil, fmt.Errorf("update: --resources: %w", err)
		}
		if err := jsondecode.Unmarshal(data, r); err != nil {
			return nil, fmt.Errorf("update: --resources %s: %w", o.resources, err)
		}
	}
	size := func(name, v string) (*int64, error) {
		if v == "-1" {
			n := int64(-1)
			return &n, nil
		}
		n, err := cgroup.ParseSize(v)
		if err != nil {
			return nil, fmt.Errorf("update: --%s %q: %w", name, v, err)
		}
		return &n, nil
	}
	number := func(name, v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("update: --%s %q: not a number", name, v)
		}
		return n, nil
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	// In a fixed order, so that errors do not depend on map order.
	for _, name := range updateFlags {
		v, ok := o.set[name]
		if !ok {
			continue
		}
		var err error
		var n int64
		switch name {
		case "memory":
			mem().Limit, err = size(name, v)
		case "memory-swap":
			mem().Swap, err = size(name, v)
		case "memory-reservation":
			mem().Reservation, err = size(name, v)
		case "kernel-memory":
			//lint:ignore SA1019 runc's option, refused below as the config's field is
			mem().Kernel, err = size(name, v)
		case "kernel-memory-tcp":
			mem().KernelTCP, err = size(name, v)
		case "cpu-shares", "cpu-share":
			if n, err = number(name, v); err == nil {
				u := uint64(n)
				cpu().Shares = &u
			}
		case "cpu-quota":
			if n, err = number(name, v); err == nil {
				cpu().Quota = &n
			}
		case "cpu-period":
			if n, err = number(name, v); err == nil {
				u := uint64(n)
				cpu().Period = &u
			}
		case "cpu-rt-period":
			if n, err = number(name, v); err == nil {
				u := uint64(n)
				cpu().RealtimePeriod = &u
			}
		case "cpu-rt-runtime":
			if n, err = number(name, v); err == nil {
				cpu().RealtimeRuntime = &n
			}
		case "cpuset-cpus":
			cpu().Cpus = v
		case "cpuset-mems":
			cpu().Mems = v
		case "pids-limit":
			if n, err = number(name, v); err == nil {
				r.Pids = &specs.LinuxPids{Limit: n}
			}
		case "blkio-weight":
			if n, err = number(name, v); err == nil {
				w := uint16(n)
				r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// update writes new limits into the cgroups of a container that is not
// stopped.
func update(g *globals, id string, r *specs.LinuxResources) error {
	c, st, err := lockAndLoad(g.root, id)
	if err != nil {
		return err
	}
	defer c.close()
	if st.Status == specs.StateStopped || st.Status == specs.StateCreating {
		return fmt.Errorf("container %s is %s: nothing to update", id, st.Status)
	}
	var l cgroup.Limits
	if err := limits(r, &l); err != nil {
		return fmt.Errorf("update: %s", strings.TrimPrefix(err.Error(), "config.json: "))
	}
	if l.MemorySwap > 0 && l.Memory <= 0 {
		// runc keeps the limit the cgroup has; barco's writes need it.
		return errors.New("update: a memory swap limit needs the memory limit with it")
	}
	l.Devices = nil // the config's rules stay as create wrote them
	layout, err := cgroup.DetectLayout("/proc/self/mountinfo", "/proc/"+strconv.Itoa(st.Pid)+"/cgroup")
	if err != nil {
		return err
	}
	writes, err := updatePlan(st, layout, &l)
	if err != nil {
		return err
	}
	for _, w := range writes {
		p := filepath.Join(w.Dir, w.File)
		g.debugf("update %s: write %q to %s", id, w.Value, p)
		if err := os.WriteFile(p, []byte(w.Value), 0); err != nil {
			return fmt.Errorf("update %s: write %q to %s: %w", id, w.Value, p, err)
		}
	}
	return nil
}

// updatePlan is the writes that set l in the container's own cgroups (the
// ones create made for it, never one it shares): in its v2 cgroup on a
// unified host, else in its v1 ones. A limit whose controller has no
// cgroup of the container's own is an error.
func updatePlan(st *State, layout *cgroup.Layout, l *cgroup.Limits) ([]cgroup.Write, error) {
	own := st.leafDirs()
	if layout.Mode == cgroup.Unified {
		dir := layout.V2.Dir(layout.V2.Own)
		if !slices.Contains(own, dir) {
			return nil, fmt.Errorf("update %s: its cgroup %s is not one create made for it", st.ID, dir)
		}
		return cgroup.PlanV2(dir, l)
	}
	dirs := map[string]string{}
	for _, h := range layout.V1 {
		if d := h.Dir(h.Own); slices.Contains(own, d) {
			for _, ctrl := range h.Controllers {
				dirs[ctrl] = d
			}
		}
	}
	for _, ctrl := range l.Controllers() {
		if ctrl == "io" {
			ctrl = "blkio"
		}
		if dirs[ctrl] == "" {
			return nil, fmt.Errorf("update %s: controller %s: the container has no cgroup of its own there (create joins a v1 hierarchy only for a limit its config sets)", st.ID, ctrl)
		}
	}
	ws, err := cgroup.PlanV1(dirs, l)
	if err != nil {
		return nil, err
	}
	// A memory limit above the current memory+swap limit must come after
	// the new memory+swap limit: the kernel keeps memory <= memsw.
	if l.MemorySwap > 0 {
		cur, err := os.ReadFile(filepath.Join(dirs["memory"], "memory.memsw.limit_in_bytes"))
		if n, perr := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64); err == nil && perr == nil && l.Memory > n {
			slices.SortStableFunc(ws, func(a, b cgroup.Write) int {
				return memswFirst(a) - memswFirst(b)
			})
		}
	}
	return ws, nil
}

func memswFirst(w cgroup.Write) int {
	if w.File == "memory.memsw.limit_in_bytes" {
		return 0
	}
	return 1
}
