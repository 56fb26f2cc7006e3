// Package chain is the contract every barco stage keeps (see
// shared/design/chain.md): the command-line grammar, the exit statuses,
// one-line errors, BARCO_DEBUG logging, the exec of the next program, the
// supervision of a child for stages that keep one, and the carrying of stage
// binaries across pivot_root.
//
// A stage's main is a Stage value and a call to Stage.Run:
//
//	st := chain.Stage{Name: "barco-x", Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]", ...}
//	st.Options.Bool(&opt.flag, "flag", 'f', "what it does")
//	st.Run(func(program []string) error {
//		... do the stage's job ...
//		return chain.Exec(program, os.Environ())
//	})
package chain
