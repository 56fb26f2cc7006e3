package chain

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// ForwardedSignals are the signals a stage that keeps a child passes on to
// it, as docker and tini do.
var ForwardedSignals = []os.Signal{
	unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH,
}

// Supervisor catches the forwarded signals of a stage that keeps a child.
// Create it before starting the child, so that no signal is lost between
// the start and Wait.
type Supervisor struct {
	sigs chan os.Signal
	log  *Log
	done func(*Supervisor)
}

// Supervisor starts catching ForwardedSignals, or returns the Supervisor
// an earlier stage in this process started: a stage that hands its
// process to a linked stage (see PlaceChildren) catches the signals from
// its start, and the later stage forwards them to its child. The
// Supervisor's Wait ends it.
func (p *Process) Supervisor() *Supervisor {
	if p.supervisor == nil {
		p.supervisor = &Supervisor{sigs: make(chan os.Signal, 16), log: p.Log,
			done: func(s *Supervisor) {
				if p.supervisor == s {
					p.supervisor = nil
				}
			}}
		signal.Notify(p.supervisor.sigs, ForwardedSignals...)
	}
	return p.supervisor
}

// Stopping returns once one of the signals that ask a program to end
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT) has been caught, with it; the others
// caught meanwhile are dropped. For a stage that waits for something
// other than its child: hooks it runs before the child is set up.
func (s *Supervisor) Stopping(ctx context.Context) (os.Signal, bool) {
	for {
		select {
		case sig := <-s.sigs:
			switch sig {
			case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
				return sig, true
			}
		case <-ctx.Done():
			return nil, false
		}
	}
}

// Release stops catching the signals without waiting for a child: a stage
// that leaves its child (barco-ns --detach) in a process that goes on
// (barco create waits for the init at its start gate, while the
// createContainer hooks run, for as long as they take). They go back to
// what they were, else that process could not be ended by SIGTERM or
// SIGINT. Given back from another goroutine: signal.Stop is a round trip
// to the Go runtime's signal thread per signal (about 0.5 ms here for the
// seven), which this process need not wait for; one caught meanwhile is
// dropped.
func (s *Supervisor) Release() {
	go signal.Stop(s.sigs)
	s.done(s)
}

// Wait forwards caught signals to pid until it exits, and returns its wait
// status. The caller relays it with ExitStatus.
func (s *Supervisor) Wait(pid int) (syscall.WaitStatus, error) {
	return s.wait(pid, pid)
}

// WaitReaping is Wait for an init: it also reaps every other child that
// exits meanwhile (orphans reparented to it), and returns when pid exits.
func (s *Supervisor) WaitReaping(pid int) (syscall.WaitStatus, error) {
	return s.wait(pid, -1)
}

func (s *Supervisor) wait(pid, waitFor int) (syscall.WaitStatus, error) {
	// Signals go through a pidfd: once wait4 below has reaped pid, its
	// number may name another process, which kill(2) would then hit. The
	// child is not reaped yet here, so the pidfd is its own.
	send := func(sig syscall.Signal) error { return unix.Kill(pid, sig) }
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		defer unix.Close(fd)
		send = func(sig syscall.Signal) error { return unix.PidfdSendSignal(fd, sig, nil, 0) }
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	// The forwarder ends before the pidfd is closed, so that it never
	// signals through a reused descriptor number.
	defer func() { close(done); <-stopped }()
	go func() {
		defer close(stopped)
		for {
			select {
			case sig := <-s.sigs:
				s.log.Debugf("forward %v to pid %d", sig, pid)
				_ = send(sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(waitFor, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) || (err == nil && got != pid) {
			continue
		}
		signal.Stop(s.sigs)
		s.done(s)
		if err != nil {
			return 0, os.NewSyscallError("wait4", err)
		}
		return ws, nil
	}
}
