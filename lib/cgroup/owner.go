package cgroup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// DefaultRecordDir holds a record of each cgroup barco-cgroup made for one
// run and removes at its end: which directories it is, and which process
// owns it. A cgroup whose owner is gone is stale and barco's to remove; a
// cgroup without a record (made with --exec, or by another manager) is
// never touched.
const DefaultRecordDir = "/run/barco/cgroups"

// An owner is a process, named by its pid and its start time, so that a
// reused pid is not taken for the owner.
type owner struct {
	pid   int
	start string // field 22 of /proc/PID/stat
}

func processStart(pid int) (string, error) {
	data, err := chain.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return f[19], nil
}

// alive reports whether the owner may still run: only a pid that is gone,
// or that names a later process, makes it dead.
func (o owner) alive() bool {
	start, err := processStart(o.pid)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return false
	}
	return err != nil || start == o.start
}

// recordPath is the record of the cgroup whose directories are dirs: one
// file per cgroup, named after its first directory.
func recordPath(recordDir string, dirs []string) string {
	return filepath.Join(recordDir, hex.EncodeToString([]byte(dirs[0])))
}

// writeRecord records the calling process as the owner of c, before any
// of its directories exists, so that no stale cgroup is without a record.
func (c *Cgroup) writeRecord() error {
	if c.Records == "" {
		return nil
	}
	start, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	text := fmt.Sprintf("owner %d %s\n%s\n", os.Getpid(), start, strings.Join(c.dirs(), "\n"))
	// O_EXCL: a record there is another run's, alive, or a stale one
	// that could not be removed; the mkdir then fails as in use, and
	// that record stays its owner's.
	p := recordPath(c.Records, c.dirs())
	var f *os.File
	// A second try: another run's removeRecord may take the empty
	// directory away between the two calls.
	for try := 0; try < 2; try++ {
		if err = os.MkdirAll(c.Records, 0o700); err != nil {
			return fmt.Errorf("cgroup record: %w", err)
		}
		if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cgroup record: %w", err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("cgroup record: %w", err)
	}
	c.recorded = true
	return nil
}

// removeRecord removes c's record, and the record directory and, for the
// default one, its parent (/run/barco) when they are left empty, so that a machine where no
// barco runs has no trace of it. Another run's record keeps them.
func (c *Cgroup) removeRecord() {
	if c.recorded {
		_ = os.Remove(recordPath(c.Records, c.dirs()))
		c.recorded = false
		if os.Remove(c.Records) == nil && c.Records == DefaultRecordDir {
			_ = os.Remove(filepath.Dir(c.Records))
		}
	}
}

func readRecord(p string) (owner, []string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return owner{}, nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f := strings.Fields(lines[0])
	if len(f) != 3 || f[0] != "owner" || len(lines) < 2 {
		return owner{}, nil, fmt.Errorf("cgroup record %s: malformed", p)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		return owner{}, nil, fmt.Errorf("cgroup record %s: malformed", p)
	}
	return owner{pid: pid, start: f[2]}, lines[1:], nil
}

// removeIfStale removes the cgroup of the record at p if its owner is
// gone: its empty directories, then the record once none is left. It
// reports whether the cgroup is gone.
func removeIfStale(p string, log *chain.Log) bool {
	o, dirs, err := readRecord(p)
	if err != nil || o.alive() {
		return false
	}
	gone := true
	for _, d := range dirs {
		// rmdir refuses a cgroup that still has processes or children.
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			log.Debugf("stale cgroup %s of pid %d: %v", d, o.pid, err)
			gone = false
		}
	}
	if gone {
		_ = os.Remove(p)
		log.Debugf("removed stale cgroup %s of pid %d", dirs[0], o.pid)
	}
	return gone
}

// sweep removes every recorded cgroup whose owner is gone.
func sweep(recordDir string, log *chain.Log) {
	if recordDir == "" {
		return
	}
	ents, err := os.ReadDir(recordDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		removeIfStale(filepath.Join(recordDir, e.Name()), log)
	}
}
