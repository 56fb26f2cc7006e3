package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"barco/lib/jsondecode"
)

// DefaultRoot is where containers' state lives unless --root says.
const DefaultRoot = "/run/barco"

// reservedIDs are names in the root directory that are not containers:
// barco-cgroup keeps its records in /run/barco/cgroups.
var reservedIDs = map[string]bool{"cgroups": true}

// checkID refuses an id that is not a plain name: it names a directory.
func checkID(id string) error {
	if id == "" {
		return errors.New("no container id given")
	}
	valid := isAlnum(id[0]) && allOf(id, func(c byte) bool { return isAlnum(c) || strings.IndexByte("_.+-", c) >= 0 })
	if len(id) > 1024 || !valid || reservedIDs[id] {
		return fmt.Errorf("container id %q: not a valid id (letters, digits, and _ . + - after the first)", id)
	}
	return nil
}

// State is what barco keeps of a container between commands, in
// ROOT/ID/state.json. It is written whole through a rename, so that a
// command never reads half of it, whenever barco is killed.
type State struct {
	specs.State
	// InitStart is the init's start time (field 22 of /proc/PID/stat), so
	// that a reused pid is not taken for the init.
	InitStart uint64    `json:"initStart,omitempty"`
	Created   time.Time `json:"created"`
	Owner     string    `json:"owner"`
	// CgroupDirs are the cgroup directories create made, and barco's own
	// parent, deepest first (see dirsToRemove): delete removes them, the
	// parent when empty, and nothing else.
	CgroupDirs []string `json:"cgroupDirs,omitempty"`
	// Rootfs and Hooks are the config's root.path and hooks, for the
	// commands after create.
	Rootfs string       `json:"rootfs,omitempty"`
	Hooks  *specs.Hooks `json:"hooks,omitempty"`
	// Config is the container's config.json as create read it: later
	// changes to the file do not matter. Kept as read, and decoded only
	// by the commands that need more than the fields above (see Spec):
	// the runtime spec's types cost more to decode and encode than the
	// rest of a command's work.
	Config json.RawMessage `json:"config"`
}

// Spec decodes the config create read.
func (s *State) Spec() (*specs.Spec, error) {
	var spec specs.Spec
	if err := jsondecode.Unmarshal(s.Config, &spec); err != nil {
		return nil, fmt.Errorf("container %s: its config: %w", s.ID, err)
	}
	return &spec, nil
}

// Container is one container's state directory, locked for the command.
type Container struct {
	ID  string
	Dir string
	fd  int // the directory, flock'ed
}

// lockDir opens dir and takes an exclusive flock on it: commands on one
// container run one after the other.
func lockDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("lock %s: %w", dir, err)
	}
	return fd, nil
}

// newContainer makes the state directory of a new container, locked.
func newContainer(root, id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("state root %s: %w", root, err)
	}
	dir := filepath.Join(root, id)
	if err := unix.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("container %s: already exists", id)
		}
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	fd, err := lockDir(dir)
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	return &Container{ID: id, Dir: dir, fd: fd}, nil
}

// errNoState is openContainer's error for a state directory that a create
// killed early left without a state: delete --force removes it.
var errNoState = errors.New("no state")

// errNotFound is the error of a command on a container that does not exist.
type errNotFound struct{ id string }

func (e errNotFound) Error() string { return fmt.Sprintf("container %s: does not exist", e.id) }

// openContainer locks the state directory of an existing container.
func openContainer(root, id string) (*Container, error) { return openState(root, id, false) }

// openState is openContainer; with noState, a directory without a state is
// returned too, with errNoState.
func openState(root, id string, noState bool) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	fd, err := lockDir(dir)
	if errors.Is(err, unix.ENOENT) {
		return nil, errNotFound{id}
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	// Deleted while this command waited for the lock, and perhaps made
	// again by another create: the lock must be on the directory the path
	// names now.
	var locked, now unix.Stat_t
	if unix.Fstat(fd, &locked) != nil || unix.Stat(dir, &now) != nil || locked.Ino != now.Ino || locked.Dev != now.Dev {
		unix.Close(fd)
		return nil, errNotFound{id}
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); errors.Is(err, os.ErrNotExist) {
		// A create killed before its first save: nothing ran yet.
		if !noState {
			unix.Close(fd)
			return nil, errNotFound{id}
		}
		return &Container{ID: id, Dir: dir, fd: fd}, errNoState
	}
	return &Container{ID: id, Dir: dir, fd: fd}, nil
}

// lockAndLoad locks a container and reads its state; the caller closes
// it when done with what the state says.
func lockAndLoad(root, id string) (*Container, *State, error) {
	c, err := openContainer(root, id)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.load()
	if err != nil {
		c.close()
		return nil, nil, err
	}
	return c, st, nil
}

// loadState reads a container's state without its lock, for a command
// that only reads it (state, list, ps): the state is written through a
// rename, so a reader sees one whole state, and it must not wait for a
// command that holds the lock for long. A hook that create runs calls
// `state` on the container being made (runc's hooks may, and crun's), and
// create waits for its hooks.
func loadState(root, id string) (*State, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	c := &Container{ID: id, Dir: filepath.Join(root, id), fd: -1}
	return c.load()
}

func (c *Container) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

func (c *Container) path(name string) string { return filepath.Join(c.Dir, name) }

// load reads the state and brings its status up to date.
func (c *Container) load() (*State, error) {
	data, err := os.ReadFile(c.path("state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errNotFound{c.ID}
		}
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	var s State
	if err := jsondecode.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("container %s: state.json: %w", c.ID, err)
	}
	s.Status = c.status(&s)
	return &s, nil
}

// status is the container's status now: stopped once its init is gone,
// created while the init waits at the start gate, paused while its
// freezer holds it, else running.
func (c *Container) status(s *State) specs.ContainerState {
	if s.Status == specs.StateCreating || s.Status == specs.StateStopped {
		return s.Status
	}
	if s.Pid <= 0 || !initAlive(s.Pid, s.InitStart) {
		return specs.StateStopped
	}
	if _, err := os.Stat(c.path(fifoName)); err == nil {
		return specs.StateCreated
	}
	return pausedStatus(s, specs.StateRunning)
}

// save writes the state through a rename.
func (c *Container) save(s *State) error {
	data, err := s.encode()
	if err != nil {
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	tmp := c.path(".state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	if err := os.Rename(tmp, c.path("state.json")); err != nil {
		return fmt.Errorf("write state of %s: %w", c.ID, err)
	}
	return nil
}

// remove deletes the state directory; the lock goes with it.
func (c *Container) remove() error {
	err := os.RemoveAll(c.Dir)
	c.close()
	if err != nil {
		return fmt.Errorf("remove state of %s: %w", c.ID, err)
	}
	return nil
}

// startTime is field 22 of /proc/PID/stat, the process's start time in
// clock ticks since boot; 0 if the process is gone.
func startTime(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// initAlive reports whether pid is still the container's init: alive, not
// a zombie, and started when the init did.
func initAlive(pid int, start uint64) bool {
	t := startTime(pid)
	return t != 0 && (start == 0 || t == start)
}

// listIDs lists the containers under root.
func listIDs(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && checkID(e.Name()) == nil {
			if _, err := os.Stat(filepath.Join(root, e.Name(), "state.json")); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}
