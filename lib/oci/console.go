package oci

import (
	"errors"
	"fmt"

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
func withConsoleSocket(ch *stageChain, fd string, size *specs.Box) {
	for i, st := range ch.stages {
		if st[0] == "barco-mount" {
			st = append(st[:len(st):len(st)], "--console-socket", fd)
			if size != nil && size.Height > 0 && size.Width > 0 {
				// process.consoleSize: the size the engine knows at create,
				// before it can set one on the master itself (Docker's
				// race of a prompt printed at 0x0).
				st = append(st, "--console-size", fmt.Sprintf("%dx%d", size.Height, size.Width))
			}
			ch.stages[i] = st
			return
		}
	}
}
