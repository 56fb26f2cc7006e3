package chain

import (
	"fmt"
	"os"
	"time"
)

// started is when this stage's Go code began, for the timings in debug lines.
var started = time.Now()

var (
	debugOn   bool
	debugName = "barco"
)

func initDebug(stage string) {
	debugName = stage
	debugOn = os.Getenv("BARCO_DEBUG") == "1"
}

// Debugging reports whether BARCO_DEBUG=1 is set.
func Debugging() bool { return debugOn }

// Debugf logs one step on stderr when BARCO_DEBUG=1.
func Debugf(format string, args ...any) {
	if !debugOn {
		return
	}
	fmt.Fprintf(os.Stderr, "%s[%d]: debug: +%dus %s\n", debugName, os.Getpid(),
		time.Since(started).Microseconds(), fmt.Sprintf(format, args...))
}
