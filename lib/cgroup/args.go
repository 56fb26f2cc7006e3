package cgroup

import (
	"errors"
	"strconv"
)

// Args are the barco-cgroup options that ask for l, for a front end that
// builds the chain from limits it computed (an OCI config's resources).
// Devices nil is no device control; else the rules other than the
// defaults, in their order, which barco-cgroup puts before the defaults.
func (l *Limits) Args() []string {
	var a []string
	add := func(name, value string) { a = append(a, name, value) }
	if l.Memory > 0 {
		add("--memory", strconv.FormatInt(l.Memory, 10))
	}
	if l.MemorySwap > 0 {
		add("--memory-swap", strconv.FormatInt(l.MemorySwap, 10))
	}
	if l.MemoryReservation > 0 {
		add("--memory-reservation", strconv.FormatInt(l.MemoryReservation, 10))
	}
	if l.MemorySwappiness != nil {
		add("--memory-swappiness", strconv.FormatUint(*l.MemorySwappiness, 10))
	}
	if l.OOMKillDisable {
		a = append(a, "--oom-kill-disable")
	}
	if l.CPUQuota > 0 {
		add("--cpu-quota", strconv.FormatInt(l.CPUQuota, 10))
		if l.CPUPeriod != 0 {
			add("--cpu-period", strconv.FormatUint(l.CPUPeriod, 10))
		}
	}
	if l.CPUShares > 0 {
		add("--cpu-shares", strconv.FormatUint(l.CPUShares, 10))
	}
	if l.CPUWeight > 0 {
		add("--cpu-weight", strconv.FormatUint(l.CPUWeight, 10))
	}
	if l.CpusetCPUs != "" {
		add("--cpuset-cpus", l.CpusetCPUs)
	}
	if l.CpusetMems != "" {
		add("--cpuset-mems", l.CpusetMems)
	}
	if l.Pids > 0 {
		add("--pids", strconv.FormatInt(l.Pids, 10))
	}
	if l.IOWeight > 0 {
		add("--io-weight", strconv.FormatUint(l.IOWeight, 10))
	}
	if l.Devices != nil {
		add("--devices", "default")
		for _, r := range l.Devices {
			if !isDefaultDevice(r) {
				add("--device-allow", r.String())
			}
		}
	}
	return a
}

func isDefaultDevice(r DeviceRule) bool {
	for _, d := range DefaultDevices {
		if d == r {
			return true
		}
	}
	return false
}

// Dirs are the cgroup's directories o names, in every hierarchy it joins,
// v2 first; nothing is made. None for an unprivileged caller (o.UID,
// o.Unprivileged) that may make no cgroup and needs none: its PROGRAM
// runs in its own cgroup.
func (o *Options) Dirs() ([]string, error) {
	c, err := o.locate(nil)
	if errors.Is(err, errNoCgroup) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c.dirs(), nil
}
