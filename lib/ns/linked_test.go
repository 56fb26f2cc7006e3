package ns

import (
	"errors"
	"testing"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// sendWaiting sends the child's side of the rendezvous on sock: the byte
// that says it waits, with fds (SCM_RIGHTS).
func sendWaiting(t *testing.T, sock int, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(sock, []byte{'w'}, oob, nil, 0); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
}

// pipeHeld reports whether a write end of the pipe whose read end is r
// is still open somewhere: a read then waits (EAGAIN here) instead of
// ending (0).
func pipeHeld(t *testing.T, r int) bool {
	t.Helper()
	if err := unix.SetNonblock(r, true); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	n, err := unix.Read(r, b[:])
	if err == unix.EAGAIN {
		return true
	}
	if err != nil || n != 0 {
		t.Fatalf("read: %d, %v", n, err)
	}
	return false
}

func socketPair(t *testing.T) [2]int {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sp[1]) })
	return sp
}

// The front gets the descriptor the child sent with its byte, as its
// own close-on-exec descriptor of the same file, and errChildEnded when
// the child closed the socket without a byte.
func TestReceiveWaiting(t *testing.T) {
	sp := socketPair(t)
	defer unix.Close(sp[0])
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	sendWaiting(t, sp[1], pipe[1])
	unix.Close(pipe[1])
	fds, err := receiveWaiting(sp[0], 1)
	if err != nil || len(fds) != 1 {
		t.Fatalf("receiveWaiting: %v, %v; want one descriptor", fds, err)
	}
	if flags, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("the descriptor received: flags %#x, %v; want close-on-exec", flags, err)
	}
	if _, err := unix.Write(fds[0], []byte("x")); err != nil {
		t.Fatalf("write on the descriptor received: %v", err)
	}
	var b [1]byte
	if n, err := unix.Read(pipe[0], b[:]); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("the descriptor received is not the pipe sent: read %d %q, %v", n, b[:n], err)
	}
	unix.Close(fds[0])

	sendWaiting(t, sp[1])
	if fds, err := receiveWaiting(sp[0], 1); err != nil || len(fds) != 0 {
		t.Fatalf("receiveWaiting of a byte alone: %v, %v", fds, err)
	}
	unix.Close(sp[1])
	if _, err := receiveWaiting(sp[0], 1); !errors.Is(err, errChildEnded) {
		t.Fatalf("receiveWaiting after the child's end: %v, want %v", err, errChildEnded)
	}
}

// A front whose work fails before the stage's takes the descriptors the
// child sent (here: it cannot join the namespaces of a child that is
// gone) closes them: the child's procfs would otherwise hold its pid
// namespace for as long as this process lives.
func TestFrontWorkFailureClosesTheDescriptorsReceived(t *testing.T) {
	sp := socketPair(t)
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	sendWaiting(t, sp[1], pipe[1])
	unix.Close(pipe[1])
	c := &Config{Flags: unix.CLONE_NEWUTS | unix.CLONE_NEWNS}
	took := false
	plan := &chain.InlinePlan{Front: func(int, []int) (func(bool), error) { took = true; return nil, nil }}
	// No such pid: pid_max is at most 2^22.
	_, err := c.frontWork(nil, plan, 1<<30, sp[0])
	if err == nil || took {
		t.Fatalf("frontWork for no child: %v, stage's work ran: %v", err, took)
	}
	if pipeHeld(t, pipe[0]) {
		t.Error("the descriptor the child sent is still open after the front failed")
	}
}
