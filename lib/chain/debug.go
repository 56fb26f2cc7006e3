package chain

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// started is when this stage's Go code began, for the timings in debug lines.
var started = time.Now()

// debugOn and debugName are atomic: a stage may log from a goroutine of
// its own while a later stage linked into the process starts.
var (
	debugOn   atomic.Bool
	debugName atomic.Pointer[string]
)

func initDebug(stage string) {
	debugName.Store(&stage)
	debugOn.Store(os.Getenv("BARCO_DEBUG") == "1")
}

// Debugging reports whether BARCO_DEBUG=1 is set.
func Debugging() bool { return debugOn.Load() }

// Debugf logs one step on stderr when BARCO_DEBUG=1.
func Debugf(format string, args ...any) {
	if !debugOn.Load() {
		return
	}
	name := "barco"
	if p := debugName.Load(); p != nil {
		name = *p
	}
	fmt.Fprintf(os.Stderr, "%s[%d]: debug: +%dus %s\n", name, os.Getpid(),
		time.Since(started).Microseconds(), fmt.Sprintf(format, args...))
}
