package chain

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PidsLimitEnv names the variable by which barco-cgroup leaves the pids
// limit of its cgroup to the stage that execs PROGRAM: "FD:N", FD being
// the cgroup's pids.max opened for writing on the host, N the limit.
//
// The chain's own stages start inside the cgroup, and a Go program runs on
// several threads, each a task the limit counts: a limit of 4 would stop
// barco itself, and the Go runtime cannot survive a failed thread start.
// The limit is for PROGRAM's tasks. The stage that execs PROGRAM writes it
// just before the exec, which leaves it one task, and from then on holds
// it to the limit; the container's own code never runs without it. The
// descriptor is close-on-exec there and the variable is not passed on.
const PidsLimitEnv = "BARCO_PIDS_LIMIT"

// PidsLimit is a pids limit left to be written (see PidsLimitEnv).
type PidsLimit struct {
	FD    int
	Limit int64
}

func (l PidsLimit) String() string { return strconv.Itoa(l.FD) + ":" + strconv.FormatInt(l.Limit, 10) }

// ParsePidsLimit reads PidsLimitEnv's value; ok is false when there is none.
func ParsePidsLimit(env []string) (l PidsLimit, ok bool, err error) {
	v, set := lookupEnv(env, PidsLimitEnv)
	if !set {
		return l, false, nil
	}
	fd, n, cut := strings.Cut(v, ":")
	l.FD, err = strconv.Atoi(fd)
	if err == nil {
		l.Limit, err = strconv.ParseInt(n, 10, 64)
	}
	if !cut || err != nil || l.FD < 3 || l.Limit < 1 {
		return l, false, fmt.Errorf("%s=%q: want FD:LIMIT", PidsLimitEnv, v)
	}
	if err := isCgroupFile(l.FD); err != nil {
		return l, false, fmt.Errorf("%s=%q: descriptor %d: %w", PidsLimitEnv, v, l.FD, err)
	}
	return l, true, nil
}

// isCgroupFile checks that fd is open on a cgroup file system (v1 or v2):
// a limit is never written anywhere else. A variable for the tests.
var isCgroupFile = func(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
		return errors.New("not a cgroup file")
	}
	return nil
}

// execWithPidsLimit writes the pids limit and execs, with nothing in
// between that could start a thread: every argument is made ready first,
// this goroutine holds the only P (GOMAXPROCS 1), so no other goroutine
// can run and no thread is started for one, and both calls are raw system
// calls, which never hand the P to another thread. After the write the
// process may not start a task beyond the limit, and the exec leaves it one.
// The caller runs on a locked thread.
func execWithPidsLimit(l PidsLimit, fd int, path string, argv, env []string) error {
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	empty, _ := syscall.BytePtrFromString("")
	value := []byte(strconv.FormatInt(l.Limit, 10))
	runtime.GOMAXPROCS(1)
	_, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(l.FD), uintptr(unsafe.Pointer(&value[0])), uintptr(len(value)))
	if errno != 0 {
		return &Error{Code: ExitFailed, Err: fmt.Errorf("write the pids limit %d: %w", l.Limit, errno)}
	}
	if fd >= 0 {
		_, _, errno = unix.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
			uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	} else {
		_, _, errno = unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(pathp)),
			uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	}
	// The limit stays: whatever this process does from here, it is
	// PROGRAM's side of the chain.
	return errno
}

// SupervisorSpareTasks are the threads a supervisor that stays in the
// cgroup may start after it has counted its own (see AddOwnTasks).
const SupervisorSpareTasks = 2

// AddOwnTasks makes room in the limit for the tasks of this process, a
// supervisor that stays in the cgroup beside PROGRAM (barco-ns's init, or
// barco-ns itself when stages are exec'd): the limit is PROGRAM's, and the
// supervisor must never be refused a thread, which the Go runtime does not
// survive. It runs on one P from here on, which is plenty for waiting and
// forwarding signals and keeps its thread count small and steady; its
// threads are counted now, plus SupervisorSpareTasks.
func (l *PidsLimit) AddOwnTasks(log *Log) {
	runtime.GOMAXPROCS(1)
	tasks, _ := os.ReadDir("/proc/self/task")
	log.Debugf("pids limit %d, plus %d tasks of this supervisor and %d spare", l.Limit, len(tasks), SupervisorSpareTasks)
	l.Limit += int64(len(tasks)) + SupervisorSpareTasks
}

// PassPidsLimit hands the pids limit of env, if any, on to a stage that
// this process starts with the descriptors files and the environment env,
// after AddOwnTasks: it returns them with the limit's descriptor and
// variable added. This process keeps its copy close-on-exec.
func PassPidsLimit(env []string, files []uintptr, log *Log, stays bool) ([]string, []uintptr, error) {
	l, ok, err := ParsePidsLimit(env)
	if err != nil || !ok {
		return env, files, err
	}
	if stays {
		l.AddOwnTasks(log)
	}
	syscall.CloseOnExec(l.FD)
	files = append(files[:len(files):len(files)], uintptr(l.FD))
	l.FD = len(files) - 1
	return withEnv(env, PidsLimitEnv, l.String()), files, nil
}

// Write writes the limit.
func (l PidsLimit) Write() error {
	v := strconv.FormatInt(l.Limit, 10)
	if _, err := unix.Write(l.FD, []byte(v)); err != nil {
		return fmt.Errorf("write the pids limit %s: %w", v, err)
	}
	return nil
}
