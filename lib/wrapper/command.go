package wrapper

import (
	"fmt"

	"barco/lib/chain"
	"barco/lib/oci"
)

const usage = `Usage: barco run [OPTIONS] [--] PROGRAM [ARG...]
       barco chain [OPTIONS] [--] PROGRAM [ARG...]
       barco -u UID -m DIR -c CMD [-a ARG] [-v]

Run PROGRAM in a container made by the standard chain of barco stages:

  barco-cgroup -- barco-ns -- barco-mount -- barco-caps -- barco-seccomp -- PROGRAM

Commands:
  run     run a container (see barco run --help for the options and defaults)
  chain   print the chain barco run would exec, as a shell command

The third form is the original barco command line: -u is the uid inside the
container, -m the directory mounted as its root, -c the command, -a the
command's argv[0] (default: CMD), -v verbose. CMD gets no arguments, as in
the original, which execs argv {ARG, NULL}.

barco also takes runc's command line, as an OCI runtime for podman,
containerd and Docker: [--root DIR] [--log FILE] [--log-format json] then
create, start, state, kill, delete, exec, pause, resume, update, ps, list,
run --bundle, spec or features, with runc's options (see the README). exec
starts a process in a running container with barco-cgroup --join and
barco-ns --join into its init's cgroups and namespaces (user and mount
included), then barco-caps and barco-seccomp as create's chain has them.

Example:
  barco run -- /bin/sh -c 'echo hello from $(hostname)'
  barco -u 0 -m / -c /bin/sh -a .     # an interactive shell; type 'exit' to quit
`

const defaults = `Defaults: a user namespace (container root is host uid 100000, or the
caller's /etc/subuid range); new pid, mount, UTS, IPC, cgroup, time and
network namespaces (loopback only); a cgroup named after the container with
a pids limit of ` + DefaultPidsLimit + ` and the default devices only; the
root filesystem idmapped (container root owns the image's files) under an
overlay whose writes vanish at exit, with the container's own /etc/hostname,
/etc/hosts and /sys/fs/cgroup; podman's 11 capabilities (NET_RAW in the
bounding set only); Docker's seccomp profile with no-new-privs; a clean
environment of PATH, HOME, HOSTNAME and TERM plus -e and --env-file.
Every option is checked before anything starts. --pids-limit counts
PROGRAM's tasks, not barco's (with --init, the init's own come on top).
A --seccomp FILE is read here, on the host, and barco-seccomp, which runs
inside the container, gets its JSON.

Rootless: for a caller that is not root, container root is the caller and
ids from 1 up are its /etc/subuid and /etc/subgid ranges (without one, the
container has its root alone and --user must be root); the root filesystem
is not idmapped (the caller's own files show as container root's), there are
no device rules, and a cgroup, with the default pids limit, only where one
is delegated to the caller (cgroup v2, systemd's user@UID.service): without
one, no cgroup, and a limit is an error.`

// Command is the barco command: its subcommands, or the original command
// line. It is a stage without options of its own, whose Main dispatches.
func Command() *chain.Stage {
	return &chain.Stage{Name: "barco", Unparsed: true, Main: dispatch}
}

// dispatch is barco's Main, given its whole command line: the top-level
// --help and --version are its own, not a stage's.
func dispatch(p *chain.Process, args []string) (int, error) {
	switch {
	case oci.IsCommand(args):
		return oci.Main(p, args)
	case len(args) > 0 && (args[0] == "run" || args[0] == "chain"):
		return p.Run(subcommand(args[0]), args[1:]), nil
	case IsLegacy(args):
		spec, err := ParseLegacy(args)
		if err != nil {
			return 0, err
		}
		return Run(p, spec)
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		fmt.Fprint(p.Stdout, usage)
		return 0, nil
	case len(args) == 1 && args[0] == "--version":
		fmt.Fprintf(p.Stdout, "barco %s\n", chain.Version)
		return 0, nil
	case len(args) == 0:
		return 0, &chain.OptionError{Msg: "no command given: run, chain, or the original -u/-m/-c syntax"}
	}
	return 0, &chain.OptionError{Msg: fmt.Sprintf("unknown command %q", args[0])}
}

// subcommand is `barco run` or `barco chain`.
func subcommand(name string) *chain.Stage {
	var spec Spec
	st := &chain.Stage{
		Name:     "barco " + name,
		Synopsis: "[OPTIONS] [--] PROGRAM [ARG...]",
		Summary:  "Run PROGRAM in a new container.",
		Notes:    defaults,
		Example:  "barco run --name web -v /srv/www:/www:ro --memory 256M --cap-add net_bind_service -- httpd -f -h /www",
	}
	if name == "chain" {
		st.Summary = "Print the chain `barco run` would exec with these options, as a shell command\n" +
			"that runs the same container when pasted into a shell."
		st.Example = "barco chain --memory 64M -- /bin/sh -c 'echo hi' | sh"
	}
	spec.Declare(&st.Options)
	st.Main = func(p *chain.Process, program []string) (int, error) {
		spec.Program = program
		if name == "chain" {
			stages, env, err := spec.Resolve()
			if err != nil {
				return 0, err
			}
			fmt.Fprint(p.Stdout, ShellChain(stages, env))
			return 0, nil
		}
		return Run(p, &spec)
	}
	return st
}
