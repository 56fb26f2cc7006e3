// Package cgroup runs a program in a new cgroup with resource limits, on
// cgroup v1, v2 and the hybrid of the two; it is barco-cgroup's logic.
//
// # Synopsis
//
//	barco-cgroup [--memory BYTES] [--memory-swap BYTES] [--cpus N] [--cpu-weight W]
//	             [--cpuset-cpus LIST] [--cpuset-mems LIST] [--pids N] [--io-weight W]
//	             [--devices default|all] [--device-allow RULE]... [--stats]
//	             [--name NAME] [--parent PATH] [--exec] [--] PROGRAM [ARG...]
//
// # Description
//
// DetectLayout reads the mount table and the process's own cgroups to find
// the layout: v1 alone (Legacy), v1 controllers with a v2 hierarchy that
// only tracks processes (Hybrid, as runc and systemd set it up), or v2
// alone (Unified). Locate names the cgroup PARENT/NAME in the hierarchies
// it joins; a relative PARENT lies below the process's own cgroup (v1) or
// beside it (v2), as with runc.
//
// The cgroup is in the v2 hierarchy when one is mounted (process tracking,
// cgroup.kill) and, on v1, only in the hierarchies it uses (V1Controllers):
// pids, devices and memory always (the task count, a security boundary,
// accounting and the out-of-memory notice), cpuacct for --stats on pure
// v1, and cpu, cpuset, blkio only for a limit that sets them. runc joins
// every hierarchy; each costs a mkdir, two thread moves and an rmdir per
// start, and since barco never updates a cgroup's limits, a cgroup without
// a limit in a hierarchy would only repeat the caller's there.
//
// Run creates the cgroup in those hierarchies, writes the limits (ApplyV1,
// ApplyV2), starts PROGRAM inside it (Start), relays its exit status, says
// so when the kernel killed it for memory, then kills whatever is left in
// the cgroup and removes it. A limit whose controller is missing or not
// delegated is an error that names the controller and the layout. Exec
// instead joins the cgroup and execs PROGRAM in place, as cgexec.
//
// Every function takes its cgroup directories as parameters, so that the
// unit tests run on a fake tree in a temporary directory.
//
// # Cleanup
//
// The cgroup is removed when PROGRAM exits or is killed, fails to start,
// or when barco-cgroup gets SIGINT or SIGTERM (forwarded to PROGRAM first);
// so is its parent when barco-cgroup made it, or when it is the default
// parent, barco's own, and empty.
// If barco-cgroup is killed with SIGKILL, PROGRAM gets SIGKILL too (its
// parent-death signal). Each cgroup made for a run is recorded in
// /run/barco/cgroups with its owner, the supervisor's pid and start time;
// the next run removes every recorded cgroup whose owner is gone (in the
// background, after that run's program has started), and one that holds
// the new run's name first. A cgroup without a record, made with --exec or
// by another manager, is never removed.
package cgroup
