// Package chain is the contract every barco stage keeps (see
// shared/design/chain.md): the command-line grammar, the exit statuses,
// one-line errors, BARCO_DEBUG logging, the exec of the next program, the
// supervision of a child for stages that keep one, and the carrying of stage
// binaries across pivot_root.
//
// A stage is a Stage value made by its package's Command function, with
// its options and its Main:
//
//	st := &chain.Stage{Name: "barco-x", Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]", ...}
//	st.Options.Bool(&opt.flag, "flag", 'f', "what it does")
//	st.Main = func(p *chain.Process, program []string) (int, error) {
//		... do the stage's job, p.OnFailure(undo) for what it made ...
//		return p.Exec(program, os.Environ())
//	}
//
// and its binary's main is chain.Main(x.Command(), later stages...): the
// later stages of the standard chain that the binary links run in the same
// process when Exec is asked for them (see Process.Link). Process holds
// everything a process of the chain keeps between its stages, and says how
// a stage's life goes; only Main turns a status into an exit. A test runs
// a stage in-process: NewProcess(Stdio{...}).Run(st, args).
package chain
