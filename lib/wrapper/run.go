package wrapper

import (
	"os"

	"barco/lib/cgroup"
	"barco/lib/chain"
)

// Run runs the container: it execs the chain, or with --tty starts it with
// a terminal of the container's own and stays to relay. It returns the status to exit
// with, or an error before anything started.
func Run(p *chain.Process, s *Spec) (int, error) {
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

// Resolve validates the spec and gives the chain and its environment, for
// the caller: root, or an unprivileged user (rootless).
func (s *Spec) Resolve() ([][]string, []string, error) {
	if s.Rootless = os.Geteuid() != 0; s.Rootless {
		err := cgroup.DelegatedTo(os.Geteuid(), cgroup.OwnParent())
		s.RootlessCgroup = err == nil
	}
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
