package chain

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ChainFDsEnv names the variable that lists descriptors, "7" or "7,9",
// that each stage starting the next one as its child passes on to it at the
// same numbers, so that a later stage's option can name them: barco run
// hands barco-mount its console socket this way (--console-socket 7).
// PROGRAM gets neither the variable nor, marked close-on-exec, the
// descriptors.
const ChainFDsEnv = "BARCO_CHAIN_FDS"

// ChildFiles is the descriptor table of a child this stage starts: 0, 1
// and 2, those the program keeps (BARCO_PRESERVE_FDS) and, when the child is
// the next stage, those of BARCO_CHAIN_FDS, each at its own number (see
// Files). A stage puts descriptors of its own for the child after these.
func ChildFiles(stage bool) []uintptr {
	var chained []int
	if stage {
		chained = ParseChainFDs(os.Getenv(ChainFDsEnv))
	}
	return Files(PreservedFDs(), chained)
}

// Files is the descriptor table 0, 1, 2, then 3 .. 2+preserve, then each
// of chained at its own number, a number in between closed (as
// syscall.ProcAttr reads ^uintptr(0)).
func Files(preserve int, chained []int) []uintptr {
	files := []uintptr{0, 1, 2}
	for fd := 3; fd < 3+preserve; fd++ {
		files = append(files, uintptr(fd))
	}
	for _, fd := range chained {
		for len(files) < fd {
			files = append(files, ^uintptr(0))
		}
		if fd == len(files) {
			files = append(files, uintptr(fd))
		}
	}
	return files
}

// ParseChainFDs reads BARCO_CHAIN_FDS: the open descriptors above stderr it
// lists, in increasing order. Anything else in it is ignored.
func ParseChainFDs(v string) []int {
	var fds []int
	for _, item := range strings.Split(v, ",") {
		fd, err := strconv.Atoi(item)
		if err != nil || fd < 3 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return slices.Compact(fds)
}

// CloseChainFDs closes the descriptors of BARCO_CHAIN_FDS in this process
// and forgets the variable, for a stage that has passed them on to its
// child and stays as its supervisor: it keeps none of them, so that an
// init inside the container holds none, and the other end sees each closed
// once the stage that uses it has closed it. Forgetting the variable keeps
// a later stage in this process from taking a number the runtime reused.
func CloseChainFDs() {
	for _, fd := range ParseChainFDs(os.Getenv(ChainFDsEnv)) {
		unix.Close(fd)
	}
	os.Unsetenv(ChainFDsEnv)
}

// HideChainFDs marks the descriptors of BARCO_CHAIN_FDS close-on-exec,
// while this stage starts a program that is not the chain's (a hook),
// which must hold none of them: a hook that left a process holding the
// report pipe would keep create from seeing its end. restore gives each
// its flags back, for a later stage that is exec'd.
func HideChainFDs() (restore func()) {
	fds := ParseChainFDs(os.Getenv(ChainFDsEnv))
	flags := make([]int, len(fds))
	for i, fd := range fds {
		flags[i], _ = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		unix.CloseOnExec(fd)
	}
	return func() {
		for i, fd := range fds {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags[i])
		}
	}
}

// CloseChainFD closes fd, one of BARCO_CHAIN_FDS that no later stage
// needs, and takes it out of the list.
func CloseChainFD(fd int) {
	forgetChainFD(fd)
	unix.Close(fd)
}

// forgetChainFD takes fd out of BARCO_CHAIN_FDS, for a descriptor this
// process closes: the number may be reused, and a stage started later
// must not take whatever it then is for the chain's.
func forgetChainFD(fd int) {
	v, ok := os.LookupEnv(ChainFDsEnv)
	if !ok {
		return
	}
	kept := slices.DeleteFunc(strings.Split(v, ","), func(item string) bool { return item == strconv.Itoa(fd) })
	if len(kept) == 0 {
		os.Unsetenv(ChainFDsEnv)
		return
	}
	os.Setenv(ChainFDsEnv, strings.Join(kept, ","))
}

// CloseInherited closes this process's descriptors above stderr that are
// not close-on-exec: the ones it inherited, or passed on to a child. The
// Go runtime's own are all close-on-exec, and stay.
func CloseInherited() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}
