// barco builds the standard chain of barco stages from one command line
// and runs it. See `barco --help` and lib/wrapper.
package main

import (
	"fmt"
	"os"

	"barco/lib/cgroup"
	"barco/lib/chain"
	"barco/lib/ns"
	"barco/lib/wrapper"
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
container, -m the directory mounted as its root, -c the command, -a its one
argument, -v verbose.

Example:
  barco run -- /bin/sh -c 'echo hello from $(hostname)'
  barco -u 0 -m / -c /bin/ls -a / -v
`

const defaults = `Defaults: a user namespace (container root is host uid 100000, or the
caller's /etc/subuid range); new pid, mount, UTS, IPC, cgroup, time and
network namespaces (loopback only); a cgroup named after the container with
a pids limit of ` + wrapper.DefaultPidsLimit + ` and the default devices only; Docker's
14 capabilities; Docker's seccomp profile with no-new-privs; a clean
environment of PATH, HOME, HOSTNAME and TERM plus -e and --env-file.
barco needs root for now.`

func main() {
	// The chain's first stages run in this process: a process image and a
	// fork less. barco-ns re-executes this binary as its child.
	chain.Link(cgroup.Command, ns.Command)
	chain.RunHelpers(nil)
	args := os.Args[1:]
	switch {
	case len(args) > 0 && (args[0] == "run" || args[0] == "chain"):
		command(args[0], args[1:])
	case wrapper.IsLegacy(args):
		spec, err := wrapper.ParseLegacy(args)
		if err != nil {
			chain.Fail("barco", err)
		}
		run(spec)
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		fmt.Print(usage)
	case len(args) == 1 && args[0] == "--version":
		fmt.Printf("barco %s\n", chain.Version)
	case len(args) == 0:
		chain.Fail("barco", &chain.OptionError{Msg: "no command given: run, chain, or the original -u/-m/-c syntax"})
	default:
		chain.Fail("barco", &chain.OptionError{Msg: "unknown command " + fmt.Sprintf("%q", args[0])})
	}
}

func command(name string, args []string) {
	var spec wrapper.Spec
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
	st.Main = func(program []string) error {
		spec.Program = program
		if name == "chain" {
			stages, env, err := spec.Resolve()
			if err != nil {
				return err
			}
			fmt.Print(wrapper.ShellChain(stages, env))
			return nil
		}
		run(&spec)
		return nil
	}
	st.Run(args)
}

func run(spec *wrapper.Spec) {
	status, err := wrapper.Run(spec)
	if err != nil {
		chain.Fail("barco", err)
	}
	os.Exit(status)
}
