package chain

import (
	"errors"
	"fmt"
	"syscall"
)

// Exit statuses of every stage, as coreutils' env, chroot, nice and timeout.
// Any other status is PROGRAM's own, or 128+N when PROGRAM was killed by
// signal N.
const (
	ExitFailed     = 125 // the stage itself failed
	ExitCannotExec = 126 // PROGRAM was found but could not be executed
	ExitNotFound   = 127 // PROGRAM was not found
)

// Error is a stage failure with the exit status it calls for and, where the
// usual cause is the machine rather than the input, a hint.
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + " (" + e.Hint + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// WithHint wraps err with a hint for the user; a nil err stays nil.
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: ExitFailed, Err: err, Hint: hint}
}

// Errorf is fmt.Errorf for failures that deserve a hint.
func Errorf(hint, format string, args ...any) error {
	return &Error{Code: ExitFailed, Err: fmt.Errorf(format, args...), Hint: hint}
}

// ExitCode is the status a stage exits with after err.
func ExitCode(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code
	}
	return ExitFailed
}

// ExitStatus turns a wait status into the status to relay: the program's
// own, or 128+N for a signal.
func ExitStatus(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return ExitFailed
}
