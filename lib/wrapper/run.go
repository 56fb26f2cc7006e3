package wrapper

import (
	"errors"
	"os"

	"barco/lib/chain"
)

// ErrNotRoot is the answer to a caller who is not root.
var ErrNotRoot = errors.New("barco needs root for now: rootless containers are not built yet")

// Run runs the container: it execs the chain, or with --tty starts it with
// a terminal of the container's own and stays to relay. It returns the status to exit
// with, or an error before anything started.
func Run(p *chain.Process, s *Spec) (int, error) {
	if os.Geteuid() != 0 {
		return 0, ErrNotRoot
	}
	stages, env, err := s.Resolve()
	if err != nil {
		return 0, err
	}
	if s.Persist != "" {
		if err := s.preparePersist(); err != nil {
			return 0, err
		}
	}
	if s.TTY {
		return runOnPTY(p, stages, env, s.PreserveFDs)
	}
	return p.Exec(Argv(stages), env)
}

// Resolve validates the spec and gives the chain and its environment.
func (s *Spec) Resolve() ([][]string, []string, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	stages, err := s.Stages()
	if err != nil {
		return nil, nil, err
	}
	env, err := s.Environ(os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	return stages, env, nil
}
