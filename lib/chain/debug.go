package chain

import (
	"fmt"
	"io"
	"os"
	"time"
)

// started is when this process's Go code began, for the timings in debug
// lines.
var started = time.Now()

// Log is a stage's debug log: with BARCO_DEBUG=1, one line per step on the
// stage's stderr, with its name, pid and the time since the process
// started. A nil *Log logs nothing, which is what code given none does.
type Log struct {
	name string
	w    io.Writer
}

// newLog is the log of the stage name, nil unless BARCO_DEBUG=1.
func newLog(name string, w io.Writer) *Log {
	if os.Getenv("BARCO_DEBUG") != "1" {
		return nil
	}
	return &Log{name: name, w: w}
}

// On reports whether the log writes anything.
func (l *Log) On() bool { return l != nil }

// Debugf logs one step.
func (l *Log) Debugf(format string, args ...any) {
	if l == nil {
		return
	}
	fmt.Fprintf(l.w, "%s[%d]: debug: +%dus %s\n", l.name, os.Getpid(),
		time.Since(started).Microseconds(), fmt.Sprintf(format, args...))
}
