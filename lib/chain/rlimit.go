package chain

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Rlimit is one --rlimit: a resource limit the child starts with.
type Rlimit struct {
	Resource   int
	Name       string
	Soft, Hard uint64
}

var rlimitNames = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// ParseRlimit reads NAME=SOFT[:HARD], NAME as prlimit(1) or the OCI
// config write it (nofile, RLIMIT_NOFILE), a value a number or unlimited.
func ParseRlimit(s string) (Rlimit, error) {
	name, v, ok := strings.Cut(s, "=")
	key := strings.TrimPrefix(strings.ToLower(name), "rlimit_")
	res, known := rlimitNames[key]
	if !ok || !known {
		return Rlimit{}, fmt.Errorf("%q: want NAME=SOFT[:HARD], NAME one of nofile, nproc, core, ... (getrlimit(2))", s)
	}
	soft, hard, two := strings.Cut(v, ":")
	l := Rlimit{Resource: res, Name: key}
	var err error
	if l.Soft, err = rlimitValue(soft); err != nil {
		return Rlimit{}, fmt.Errorf("%q: %w", s, err)
	}
	l.Hard = l.Soft
	if two {
		if l.Hard, err = rlimitValue(hard); err != nil {
			return Rlimit{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	if l.Soft > l.Hard {
		return Rlimit{}, fmt.Errorf("%q: the soft limit is above the hard one", s)
	}
	return l, nil
}

func rlimitValue(v string) (uint64, error) {
	if v == "unlimited" || v == "-1" {
		return unix.RLIM_INFINITY, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: not a limit", v)
	}
	return n, nil
}

// RlimitsEnv names the resource limits PROGRAM starts with (barco-ns
// --rlimit), "nofile=1024:1024,core=0:0": the stage that execs PROGRAM
// sets them just before the exec, since a stage's Go runtime may need more
// than PROGRAM is given (address space, descriptors).
const RlimitsEnv = "BARCO_RLIMITS"

// String is the limit as ParseRlimit reads it.
func (l Rlimit) String() string {
	v := func(n uint64) string {
		if n == unix.RLIM_INFINITY {
			return "unlimited"
		}
		return strconv.FormatUint(n, 10)
	}
	return l.Name + "=" + v(l.Soft) + ":" + v(l.Hard)
}

// ApplyRlimitsEnv sets the limits of RlimitsEnv in env on this process.
// Raising a hard limit needs CAP_SYS_RESOURCE in the initial user
// namespace.
func ApplyRlimitsEnv(env []string) error {
	ls, err := rlimitsEnv(env)
	if err != nil {
		return err
	}
	return applyRlimits(ls)
}

// RaiseRlimitsEnv raises the hard limits of RlimitsEnv in env that are
// above this process's, and changes nothing else: what needs a privilege
// is done (or fails) before the start gate, while the container can still
// fail to be created, as under runc; the limits themselves, which may be
// lower than a stage's Go runtime needs, wait for the exec.
func RaiseRlimitsEnv(env []string) error {
	ls, err := rlimitsEnv(env)
	if err != nil {
		return err
	}
	for _, l := range ls {
		var cur unix.Rlimit
		if err := unix.Prlimit(0, l.Resource, nil, &cur); err != nil {
			return fmt.Errorf("getrlimit %s: %w", l.Name, err)
		}
		if l.Hard <= cur.Max {
			continue
		}
		raised := unix.Rlimit{Cur: cur.Cur, Max: l.Hard}
		if err := unix.Prlimit(0, l.Resource, &raised, nil); err != nil {
			return fmt.Errorf("setrlimit %s %d:%d: %w", l.Name, l.Soft, l.Hard, err)
		}
	}
	return nil
}

func rlimitsEnv(env []string) ([]Rlimit, error) {
	v, ok := lookupEnv(env, RlimitsEnv)
	if !ok || v == "" {
		return nil, nil
	}
	var ls []Rlimit
	for _, item := range strings.Split(v, ",") {
		l, err := ParseRlimit(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", RlimitsEnv, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func applyRlimits(ls []Rlimit) error {
	for _, l := range ls {
		lim := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := unix.Prlimit(0, l.Resource, &lim, nil); err != nil {
			return fmt.Errorf("setrlimit %s %d:%d: %w", l.Name, l.Soft, l.Hard, err)
		}
	}
	return nil
}
