package oci

import (
	"errors"

	"barco/lib/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// createConsoleSocket connects to create's --console-socket, for a process
// with a terminal: barco-mount makes the terminal in the container's devpts
// and sends its master over the socket, which create connects to here, as
// the host's root (runc's create does so too): the container's root may not
// be allowed to. -1 without a terminal.
func createConsoleSocket(s *specs.Spec, path string) (int, error) {
	switch {
	case s.Process.Terminal && path == "":
		return -1, errors.New("config.json: process.terminal needs --console-socket")
	case !s.Process.Terminal && path != "":
		return -1, errors.New("--console-socket needs process.terminal in config.json")
	case path == "":
		return -1, nil
	}
	return console.Connect(path)
}

// withConsoleSocket gives the chain's barco-mount the console socket
// inherited at descriptor fd.
func withConsoleSocket(ch *stageChain, fd string) {
	for i, st := range ch.stages {
		if st[0] == "barco-mount" {
			ch.stages[i] = append(st[:len(st):len(st)], "--console-socket", fd)
			return
		}
	}
}
