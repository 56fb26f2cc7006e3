package hook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A variable of RuntimeEnv, CreateEnv or StartEnv holds its Set's JSON, or "fd:N":
// a descriptor that holds it. An environment variable holds at most 128
// KiB, and a state's annotations can be more (Kubernetes puts a pod's
// into them); the OCI mode passes such a Set in a memfd, one of the
// chain's descriptors (chain.ChainFDsEnv), which the stages pass on and
// close before PROGRAM.
const fdPrefix = "fd:"

// FD is the descriptor a RuntimeEnv, CreateEnv or StartEnv value names, if it names
// one: -1 and true for a value "fd:" with no descriptor number.
func FD(v string) (fd int, ok bool) {
	n, ok := strings.CutPrefix(v, fdPrefix)
	if !ok {
		return -1, false
	}
	fd, err := strconv.Atoi(n)
	if err != nil || fd < 0 {
		return -1, true
	}
	return fd, true
}

// LoadSet decodes the Set of a RuntimeEnv, CreateEnv or StartEnv value.
func LoadSet(v string) (Set, error) {
	var set Set
	data := []byte(v)
	if fd, ok := FD(v); ok {
		if fd < 0 {
			return set, fmt.Errorf("%q: not a descriptor", v)
		}
		var err error
		if data, err = readAll(fd); err != nil {
			return set, fmt.Errorf("read fd %d: %w", fd, err)
		}
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return set, err
	}
	return set, nil
}

// StoreSet writes set where the value v keeps it and returns the value
// to keep: v, its descriptor rewritten, or set's JSON.
func StoreSet(v string, set Set) (string, error) {
	data, err := json.Marshal(set)
	if err != nil {
		return "", err
	}
	fd, ok := FD(v)
	if !ok {
		return string(data), nil
	}
	if fd < 0 {
		return "", fmt.Errorf("%q: not a descriptor", v)
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		return "", fmt.Errorf("truncate fd %d: %w", fd, err)
	}
	for off := 0; off < len(data); {
		w, err := unix.Pwrite(fd, data[off:], int64(off))
		if err != nil {
			return "", fmt.Errorf("write fd %d: %w", fd, err)
		}
		off += w
	}
	return v, nil
}

// SetInFD returns a memfd that holds data, for a value "fd:N" (see
// LoadSet), and that value for descriptor N.
func SetInFD(data []byte) (fd int, value string, err error) {
	fd, err = unix.MemfdCreate("barco-hooks", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, "", fmt.Errorf("memfd_create: %w", err)
	}
	for off := 0; off < len(data); {
		w, err := unix.Write(fd, data[off:])
		if err != nil {
			unix.Close(fd)
			return -1, "", fmt.Errorf("write memfd: %w", err)
		}
		off += w
	}
	return fd, fdPrefix + strconv.Itoa(fd), nil
}

func readAll(fd int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	data := make([]byte, 0, st.Size)
	buf := make([]byte, 64<<10)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return data, nil
		}
		data = append(data, buf[:n]...)
		off += int64(n)
	}
}
