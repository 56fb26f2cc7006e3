package chain

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// StageFDsEnv names the variable that lists the carried stage binaries,
// "barco-caps=5,barco-seccomp=6". It passes down the chain with them and is
// removed before the container's program starts.
const StageFDsEnv = "BARCO_STAGE_FDS"

// carried maps a stage name to the descriptor of its sealed in-memory copy.
var carried = parseStageFDs(os.Getenv(StageFDsEnv))

func parseStageFDs(v string) map[string]int {
	m := map[string]int{}
	for _, item := range strings.Split(v, ",") {
		name, fdText, ok := strings.Cut(item, "=")
		fd, err := strconv.Atoi(fdText)
		if !ok || err != nil || !IsStage(name) || fd < 3 {
			continue
		}
		// Only trust a descriptor that really is open.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			m[name] = fd
		}
	}
	return m
}

func formatStageFDs(m map[string]int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(m[n])
	}
	return strings.Join(parts, ",")
}

// Carried reports whether this stage runs from a carried copy, that is
// inside a container after barco-mount.
func Carried() bool { return len(carried) > 0 }

// CarryStages prepares the stages named in argv for the crossing of
// pivot_root: each bare stage name found in argv gets a sealed memfd copy of
// the binary of that name next to the running one, which Exec uses from then
// on.
//
// The copies are sealed against writing, so that nothing inside the
// container can rewrite a host binary while it runs (CVE-2019-5736); runc
// does the same. Only the stages named are copied, because copying is most
// of the cost of crossing.
func CarryStages(argv []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dir := filepath.Dir(self)
	minFD := 3
	if n, err := strconv.Atoi(os.Getenv(PreserveFDsEnv)); err == nil && n > 0 {
		minFD += n
	}
	for _, name := range argv {
		if !IsStage(name) {
			continue
		}
		if _, done := carried[name]; done {
			continue
		}
		fd, err := sealedCopy(filepath.Join(dir, name), name, minFD)
		if err != nil {
			return err
		}
		carried[name] = fd
		Debugf("carry %s as sealed memfd %d", name, fd)
	}
	return os.Setenv(StageFDsEnv, formatStageFDs(carried))
}

func sealedCopy(path, name string, minFD int) (int, error) {
	mem, err := SealedCopy(path, name)
	if err != nil {
		return -1, err
	}
	defer mem.Close()
	// A fresh descriptor without close-on-exec, above those the program
	// keeps, so that it passes from stage to stage.
	kept, err := unix.FcntlInt(mem.Fd(), unix.F_DUPFD, minFD)
	if err != nil {
		return -1, fmt.Errorf("dup memfd copy of %s: %w", name, err)
	}
	return kept, nil
}

// SealedCopy copies the executable at path into a memfd named name and
// seals it against any change; the file is close-on-exec.
func SealedCopy(path, name string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("carry stage %s: %w", name, err)
	}
	defer src.Close()
	// MFD_EXEC states the intent where vm.memfd_noexec asks for it (Linux
	// 6.3); older kernels do not know the flag.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	mem := os.NewFile(uintptr(fd), name)
	if _, err := io.Copy(mem, src); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy %s to memfd: %w", path, err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal memfd copy of %s: %w", name, err)
	}
	return mem, nil
}
