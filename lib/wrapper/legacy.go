package wrapper

import (
	"errors"

	"barco/lib/chain"
)

// IsLegacy reports whether args is the original barco command line,
// barco -u UID -m DIR -c CMD [-a ARG] [-v].
func IsLegacy(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "-u", "-m", "-c", "-a", "-v":
		return true
	}
	return false
}

// ParseLegacy gives the original command line its meaning: -u is the uid
// inside the container, -m the directory mounted as its root, -c the
// command, -a the command's argv[0] (CMD itself without -a) and -v
// verbose. The original execs CMD with argv {ARG, NULL}: CMD gets no
// argument, so `-c /bin/sh -a .` is an interactive shell named ".".
// Everything else is as `barco run`'s defaults.
func ParseLegacy(args []string) (*Spec, error) {
	var (
		uid, dir, cmd, arg string
		hasArg, verbose    bool
		o                  chain.Options
	)
	o.String(&uid, "uid", 'u', "UID", "")
	o.String(&dir, "mount", 'm', "DIR", "")
	o.String(&cmd, "command", 'c', "CMD", "")
	o.Func("arg", 'a', "ARG", "", func(v string) error { arg, hasArg = v, true; return nil })
	o.Bool(&verbose, "verbose", 'v', "")
	rest, err := o.Parse(args)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, &chain.OptionError{Msg: "unexpected argument " + rest[0] + " in the original barco syntax; use barco run"}
	}
	if cmd == "" || dir == "" {
		return nil, errors.New("the original syntax needs -m DIR and -c CMD: barco -u UID -m DIR -c CMD [-a ARG] [-v]")
	}
	// The original wrote straight into DIR (often /, whose mounts an
	// overlay or an idmap would not carry): so does this form.
	s := &Spec{Rootfs: dir, User: uid, Debug: verbose, NoOverlay: true, Program: []string{cmd}}
	if hasArg {
		s.Argv0 = &arg
	}
	return s, nil
}
