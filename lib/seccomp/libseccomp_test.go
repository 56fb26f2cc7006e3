package seccomp

import (
	"fmt"
	"os"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// The reference: libseccomp's own compilation of a Filter, which the
// tests compare Assemble's programs with.

// libseccompFilter is a Filter compiled by libseccomp.
type libseccompFilter struct {
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

// compileLibseccomp builds the filter of f with libseccomp, as runc does.
func compileLibseccomp(f *Filter, noNewPrivs bool) (*libseccompFilter, error) {
	filter, err := libseccomp.NewFilter(scmpAction(f.Default))
	if err != nil {
		return nil, fmt.Errorf("libseccomp: new filter: %w", err)
	}
	c := &libseccompFilter{filter: filter}
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

// ExportBPF writes the classic BPF program the kernel would get, as
// struct sock_filter records in host byte order.
func (c *libseccompFilter) ExportBPF() ([]byte, error) {
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
func (c *libseccompFilter) Release() { c.filter.Release() }
