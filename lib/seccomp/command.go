package seccomp

import (
	"os"

	"barco/lib/chain"
	"barco/lib/sysprog"
)

// Command is the barco-seccomp stage.
func Command() *chain.Stage {
	st := &chain.Stage{
		Name:     "barco-seccomp",
		Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]",
		Summary: `Load a seccomp filter and exec PROGRAM. The profile is Docker's JSON format;
"default" is Docker's default profile. Its conditions are evaluated against
this process's capabilities (the permitted set, or the bounding set with
--allow-new-privs), the running kernel and the native architecture.`,
		Notes: `PROFILE is "default", "unconfined" (load nothing), a JSON file, read in the
current root (the container's after barco-mount), or, starting with "{", the
profile's JSON itself, as barco run passes a host file's. A syscall
name that libseccomp does not know on any of the filter's architectures is
skipped (--print lists them, BARCO_DEBUG=1 names them). The filter applies to
every thread and is inherited by PROGRAM's children; no_new_privs is set first.`,
		Example: `barco-seccomp -- grep Seccomp: /proc/self/status
barco-seccomp --print | grep -E '^(clone|mount|personality) '`,
		NoProgram: true,
	}
	var (
		cfg   = Config{Profile: ProfileDefault}
		print bool
	)
	o := &st.Options
	o.String(&cfg.Profile, "profile", 0, "PROFILE", "default, unconfined, a JSON file or the JSON itself (default: default)")
	o.Func("no-new-privs", 0, "", "set no_new_privs, so that exec cannot gain privileges (the default)",
		func(string) error { cfg.AllowNewPrivs = false; return nil })
	o.Bool(&cfg.AllowNewPrivs, "allow-new-privs", 0, "do not set no_new_privs (loading then needs CAP_SYS_ADMIN)")
	o.Bool(&print, "print", 0, "print the resolved rules and exit, loading nothing")

	st.Steps = func(in *chain.Inline, program []string) (func(*sysprog.Builder), error) {
		// A file is read in the child's root, which a child's steps
		// cannot parse.
		if print || !(cfg.Profile == ProfileDefault || cfg.Profile == ProfileUnconfined || IsInline(cfg.Profile)) {
			return nil, chain.ErrNotInline
		}
		cfg.Log, cfg.Child = in.Log, in.State
		prep, err := Prepare(&cfg)
		if err != nil {
			return nil, err
		}
		if prep.Program != nil {
			in.State.NoNewPrivs = in.State.NoNewPrivs || prep.NoNewPrivs
			in.State.Filtered = true
		}
		return func(b *sysprog.Builder) {
			// As Main: PROGRAM is found before the filter is in force.
			in.EmitBeforeFilter(b)
			if prep.Program != nil {
				prep.Program.emitLoad(b, prep.NoNewPrivs)
			}
		}, nil
	}
	st.Main = func(p *chain.Process, program []string) (int, error) {
		if len(program) == 0 && !print {
			return 0, &chain.OptionError{Msg: "no PROGRAM given"}
		}
		cfg.Log = p.Log
		prep, err := Prepare(&cfg)
		if err != nil {
			return 0, err
		}
		if print {
			return 0, prep.WriteText(p.Stdout)
		}
		// Find PROGRAM before the filter is in force, once: a missing
		// program is reported as such, and a profile need not allow the
		// lookup's system calls.
		if err := p.FindProgram(program, os.Environ()); err != nil {
			return 0, err
		}
		// The filter binds every thread, the one that would undo an
		// earlier stage's work too (see chain.Process.DropOnFailure).
		if prep.Program != nil {
			p.DropOnFailure()
		}
		if err := prep.Load(); err != nil {
			return 0, err
		}
		return p.Exec(program, os.Environ())
	}
	return st
}
