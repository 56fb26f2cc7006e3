package caps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// credFields are the lines of /proc/PID/task/TID/status that hold a
// thread's credentials.
var credFields = []string{"Uid:", "Gid:", "Groups:", "NoNewPrivs:",
	"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}

// CheckThreads compares the credentials of every thread in taskDir
// (/proc/self/task) and returns how many threads agree. A change made on
// one thread only, which the kernel allows and the Go runtime makes easy,
// shows up here as an error naming the thread that differs. It reads every
// thread's status, so it runs under BARCO_DEBUG=1 only.
func CheckThreads(taskDir string) (int, error) {
	ents, err := os.ReadDir(taskDir)
	if err != nil {
		return 0, err
	}
	var first, firstTID string
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(taskDir, e.Name(), "status"))
		if os.IsNotExist(err) {
			continue // the thread has just exited
		}
		if err != nil {
			return 0, err
		}
		creds := credLines(string(data))
		if first == "" {
			first, firstTID = creds, e.Name()
			continue
		}
		if creds != first {
			return 0, fmt.Errorf("thread %s has other credentials than thread %s:\n%s\n%s", e.Name(), firstTID, creds, first)
		}
	}
	return len(ents), nil
}

func credLines(status string) string {
	var b strings.Builder
	for _, l := range strings.Split(status, "\n") {
		for _, f := range credFields {
			if strings.HasPrefix(l, f) {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}
