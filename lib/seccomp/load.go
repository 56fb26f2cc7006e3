package seccomp

import (
	"errors"
	"fmt"
	"os"

	"barco/lib/chain"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Compiled is a Filter turned into a libseccomp filter, ready to load or
// export.
type Compiled struct {
	filter  *libseccomp.ScmpFilter
	Skipped []string // syscall names libseccomp does not know
}

func scmpAction(a Action) libseccomp.ScmpAction {
	switch a.Kind {
	case ActAllow:
		return libseccomp.ActAllow
	case ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(a.Ret))
	case ActKillThread:
		return libseccomp.ActKillThread
	case ActKillProcess:
		return libseccomp.ActKillProcess
	case ActTrap:
		return libseccomp.ActTrap
	case ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(a.Ret))
	case ActLog:
		return libseccomp.ActLog
	}
	return libseccomp.ActInvalid
}

var scmpOps = [...]libseccomp.ScmpCompareOp{
	OpEQ:       libseccomp.CompareEqual,
	OpNE:       libseccomp.CompareNotEqual,
	OpLT:       libseccomp.CompareLess,
	OpLE:       libseccomp.CompareLessOrEqual,
	OpGT:       libseccomp.CompareGreater,
	OpGE:       libseccomp.CompareGreaterEqual,
	OpMaskedEQ: libseccomp.CompareMaskedEqual,
}

// Compile builds the BPF program of f with libseccomp. noNewPrivs says
// whether loading it sets no_new_privs, which the kernel requires unless
// the caller has CAP_SYS_ADMIN.
func Compile(f *Filter, noNewPrivs bool) (*Compiled, error) {
	filter, err := libseccomp.NewFilter(scmpAction(f.Default))
	if err != nil {
		return nil, fmt.Errorf("libseccomp: new filter: %w", err)
	}
	c := &Compiled{filter: filter}
	for _, name := range f.Arches {
		arch, err := libseccomp.GetArchFromString(name)
		if err != nil {
			return nil, fmt.Errorf("libseccomp: architecture %s: %w", name, err)
		}
		if present, _ := filter.IsArchPresent(arch); present {
			continue
		}
		if err := filter.AddArch(arch); err != nil {
			return nil, fmt.Errorf("libseccomp: add architecture %s: %w", name, err)
		}
	}
	if err := filter.SetNoNewPrivsBit(noNewPrivs); err != nil {
		return nil, fmt.Errorf("libseccomp: no_new_privs attribute: %w", err)
	}
	if f.Log {
		if err := filter.SetLogBit(true); err != nil {
			return nil, fmt.Errorf("libseccomp: SECCOMP_FILTER_FLAG_LOG: %w", err)
		}
	}
	if f.SpecAllow {
		if err := filter.SetSSB(true); err != nil {
			return nil, fmt.Errorf("libseccomp: SECCOMP_FILTER_FLAG_SPEC_ALLOW: %w", err)
		}
	}
	// A binary tree of syscall numbers instead of a linear scan: cheaper
	// for every syscall PROGRAM makes. libseccomp 2.5 misbehaves with it
	// on an empty rule set, hence the threshold (as runc).
	if len(f.Rules) > 32 {
		_ = filter.SetOptimize(2) // older libseccomp: a linear filter is fine
	}
	unknown := map[string]bool{}
	for _, r := range f.Rules {
		nr, err := libseccomp.GetSyscallFromName(r.Syscall)
		if err != nil {
			if !unknown[r.Syscall] {
				unknown[r.Syscall] = true
				c.Skipped = append(c.Skipped, r.Syscall)
			}
			continue
		}
		var conds []libseccomp.ScmpCondition
		for _, a := range r.Args {
			cond, err := libseccomp.MakeCondition(a.Index, scmpOps[a.Op], a.Value, a.ValueTwo)
			if err != nil {
				return nil, fmt.Errorf("libseccomp: rule %s: %w", r, err)
			}
			conds = append(conds, cond)
		}
		if len(conds) == 0 {
			err = filter.AddRule(nr, scmpAction(r.Action))
		} else {
			err = filter.AddRuleConditional(nr, scmpAction(r.Action), conds)
		}
		if err != nil {
			return nil, fmt.Errorf("libseccomp: rule %s: %w", r, err)
		}
	}
	return c, nil
}

// Load installs the filter in the kernel for every thread of the process
// (TSYNC, which libseccomp-golang always asks for). Nothing but exec should
// follow it: from here on, the Go runtime itself runs under the filter.
func (c *Compiled) Load() error {
	err := c.filter.Load()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return chain.Errorf("does the kernel have CONFIG_SECCOMP_FILTER?", "load seccomp filter: %w", err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return chain.Errorf("without no_new_privs, loading a filter needs CAP_SYS_ADMIN", "load seccomp filter: %w", err)
	}
	return fmt.Errorf("load seccomp filter: %w", err)
}

// ExportBPF writes the classic BPF program the kernel would get, as
// struct sock_filter records in host byte order.
func (c *Compiled) ExportBPF() ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	done := make(chan []byte)
	go func() {
		var out []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		done <- out
	}()
	err = c.filter.ExportBPF(w)
	w.Close()
	out := <-done
	if err != nil {
		return nil, fmt.Errorf("libseccomp: export BPF: %w", err)
	}
	return out, nil
}

// Release frees libseccomp's memory for the filter.
func (c *Compiled) Release() { c.filter.Release() }
