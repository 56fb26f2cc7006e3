package cgroup

import (
	"fmt"
	"os"
	"strconv"

	"barco/lib/chain"
)

// Command is the barco-cgroup stage.
func Command() *chain.Stage {
	uid := os.Geteuid()
	o := Options{Parent: OwnParent(), Records: RecordDir(uid), UID: uid, Unprivileged: !chain.HostRoot()}
	l := &o.Limits
	var exec bool
	var devices string
	var allow []DeviceRule
	st := &chain.Stage{
		Name:     "barco-cgroup",
		Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]",
		Summary: "Run PROGRAM in a new cgroup PARENT/NAME with resource limits, wait for it, relay its\n" +
			"exit status, then kill whatever it left in the cgroup and remove the cgroup. Works on\n" +
			"cgroup v1, v2 and the hybrid layout. No limit is set unless asked; a limit whose\n" +
			"controller is missing or not delegated is an error. A PROGRAM that is barco-ns runs in\n" +
			"barco-cgroup's own process, which it shares: barco-ns starts its child in the cgroup.",
		Example: "barco-cgroup --memory 64M --cpus 0.5 --pids 32 --stats -- sh -c 'cat /proc/self/cgroup'",
		Notes: "A relative PARENT is below the caller's own cgroup (v1) or beside it (v2), as with runc.\n" +
			"On cgroup v1 the cgroup is made only in the pids, devices and memory hierarchies and in\n" +
			"those of the limits asked (cpu, cpuset, blkio; cpuacct for --stats on pure v1), plus v2's\n" +
			"when mounted: runc joins them all, barco what it uses, which costs less at each start.\n" +
			"Each run's cgroup is recorded with its owner in /run/barco/cgroups; the next run removes\n" +
			"the empty ones whose owner is gone (a supervisor killed with SIGKILL). A cgroup made\n" +
			"with --exec has no record and stays for its owner.\n" +
			"--pids counts PROGRAM's tasks, not those of the barco stages that start it in the cgroup\n" +
			"(each runs on several threads): with a barco stage as PROGRAM, the stage that execs the\n" +
			"container's program writes the limit just before its exec (BARCO_PIDS_LIMIT); a stage\n" +
			"that stays in the cgroup as its supervisor (barco-ns --init) adds its own tasks and two.\n" +
			"A caller that is not root makes its cgroup only in a cgroup v2 subtree delegated to it\n" +
			"(systemd's user@UID.service), with no device rules, recorded in $XDG_RUNTIME_DIR/barco/cgroups;\n" +
			"without one it runs PROGRAM in its own cgroup when no limit and no --stats is asked\n" +
			"(BARCO_DEBUG=1 says so), and fails naming the reason when one is.",
	}
	st.Options.Func("memory", 'm', "BYTES", "memory limit, with K, M, G suffixes (64M), at least "+FormatSize(MinMemory), func(v string) (err error) {
		l.Memory, err = ParseMemory(v)
		return err
	})
	st.Options.Func("memory-swap", 0, "BYTES", "memory plus swap limit, as docker's; equal to --memory for no swap, -1 for no limit", func(v string) (err error) {
		l.MemorySwap, err = ParseSwap(v)
		return err
	})
	st.Options.Func("memory-reservation", 0, "BYTES", "soft memory limit (v1 memory.soft_limit_in_bytes, v2 memory.low)", func(v string) (err error) {
		l.MemoryReservation, err = ParseMemory(v)
		return err
	})
	st.Options.Func("memory-swappiness", 0, "N", "v1 memory.swappiness, 0-100 (v2 has none)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > 100 {
			return fmt.Errorf("%q: want 0 to 100", v)
		}
		l.MemorySwappiness = &n
		return nil
	})
	st.Options.Bool(&l.OOMKillDisable, "oom-kill-disable", 0, "turn the kernel's OOM killer off for the cgroup (v1 memory.oom_control; v2 has none)")
	st.Options.Func("cpus", 'c', "N", "CPU time, in CPUs, fractional (1.5): a CFS quota over a 100ms period", func(v string) (err error) {
		l.CPUQuota, err = ParseCPUs(v)
		return err
	})
	st.Options.Func("cpu-shares", 0, "N", "v1 cpu.shares, 2-262144, exactly (converted to cpu.weight on v2)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 2 || n > 262144 {
			return fmt.Errorf("%q: not cpu.shares, 2-262144", v)
		}
		l.CPUShares = n
		return nil
	})
	st.Options.Func("cpu-quota", 0, "US", "CFS quota in microseconds per --cpu-period, as docker's", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1000 {
			return fmt.Errorf("%q: not a quota in microseconds, 1000 or more", v)
		}
		l.CPUQuota = n
		return nil
	})
	st.Options.Func("cpu-period", 0, "US", "CFS period in microseconds, 1000-1000000 (default 100000)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1000 || n > 1000000 {
			return fmt.Errorf("%q: not a period in microseconds, 1000-1000000", v)
		}
		l.CPUPeriod = n
		return nil
	})
	st.Options.Func("cpu-weight", 0, "W", "CPU weight 1-10000 (v2 cpu.weight; converted to cpu.shares on v1)", func(v string) (err error) {
		l.CPUWeight, err = ParseWeight(v)
		return err
	})
	st.Options.Func("cpuset-cpus", 0, "LIST", "CPUs allowed, like 0-1,3", func(v string) (err error) {
		l.CpusetCPUs, err = ParseCPUSet(v)
		return err
	})
	st.Options.Func("cpuset-mems", 0, "LIST", "memory nodes allowed, like 0", func(v string) (err error) {
		l.CpusetMems, err = ParseCPUSet(v)
		return err
	})
	st.Options.Func("pids", 'p', "N", "maximum number of PROGRAM's tasks (processes and threads); see below", func(v string) (err error) {
		l.Pids, err = ParsePids(v)
		return err
	})
	st.Options.Func("io-weight", 0, "W", "I/O weight 1-10000 (v2 io.weight; blkio.weight on v1)", func(v string) (err error) {
		l.IOWeight, err = ParseWeight(v)
		return err
	})
	st.Options.Func("devices", 0, "default|all", "default: only null, zero, full, random, urandom, tty, ptmx, pts; all: no device control", func(v string) error {
		if v != "default" && v != "all" {
			return fmt.Errorf("want default or all, not %q", v)
		}
		devices = v
		return nil
	})
	st.Options.Func("device-allow", 0, "RULE", "allow one more device, as devices.allow: 'c 10:200 rwm'", func(v string) error {
		r, err := ParseDeviceRule(v)
		allow = append(allow, r)
		return err
	})
	st.Options.Bool(&o.Stats, "stats", 0, "print peak memory, CPU time and peak task count on stderr at exit")
	st.Options.Func("name", 'n', "NAME", "name of the cgroup, [a-zA-Z0-9][a-zA-Z0-9_.-]* (default: the pid of barco-cgroup)", func(v string) error {
		o.Name = v
		return ValidName(v)
	})
	st.Options.Func("parent", 0, "PATH", "parent cgroup (default: $BARCO_CGROUP_PARENT, else barco)", func(v string) error {
		o.Parent, o.parentGiven = v, true
		return nil
	})
	st.Options.Bool(&exec, "exec", 0, "join the cgroup (made if missing) and exec PROGRAM in place (a barco-ns linked into this binary stays out, and starts its child in it); nothing is removed")
	var join []string
	st.Options.Func("join", 0, "DIR", "join the existing cgroup at DIR, in any hierarchy, and exec PROGRAM in place, as cgexec (repeatable: one per hierarchy)", func(v string) error {
		dir, err := ParseJoinDir(v)
		join = append(join, dir)
		return err
	})

	st.Main = func(p *chain.Process, program []string) (int, error) {
		if l.MemorySwap > 0 && (l.Memory <= 0 || l.MemorySwap < l.Memory) {
			return 0, fmt.Errorf("--memory-swap %s: needs --memory, no larger than it", FormatSize(l.MemorySwap))
		}
		switch {
		case devices == "all" && len(allow) > 0:
			return 0, fmt.Errorf("--device-allow: no use with --devices all")
		case devices == "default" || len(allow) > 0:
			// The rules asked for first, in their order, as an OCI config
			// lists them; the defaults after.
			l.Devices = append(append([]DeviceRule{}, allow...), DefaultDevices...)
		}
		if len(join) > 0 {
			if err := o.JoinOnly(exec); err != nil {
				return 0, err
			}
			return JoinExisting(p, join, program)
		}
		if exec {
			return Exec(p, &o, program)
		}
		return Run(p, &o, program)
	}
	return st
}
