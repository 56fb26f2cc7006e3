package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// statePaused is runc's status of a frozen container; the runtime spec
// has no name for it.
const statePaused specs.ContainerState = "paused"

// freezer is the cgroup that freezes a container: its own v2 cgroup
// (cgroup.freeze, on a unified host and in the hybrid layout's v2 tree
// alike), else its own cgroup in the v1 freezer hierarchy.
type freezer struct {
	dir string
	v2  bool
}

// freezerOf is the container's freezer: one of the cgroups create made for
// it (its leaves), never a cgroup it shares with others.
func freezerOf(st *State) (freezer, error) {
	leaves := st.leafDirs()
	for _, d := range leaves {
		if _, err := os.Stat(filepath.Join(d, "cgroup.freeze")); err == nil {
			return freezer{dir: d, v2: true}, nil
		}
	}
	for _, d := range leaves {
		if _, err := os.Stat(filepath.Join(d, "freezer.state")); err == nil {
			return freezer{dir: d}, nil
		}
	}
	return freezer{}, fmt.Errorf("container %s: no cgroup of its own that can freeze it (a cgroup v2 one, or one in the v1 freezer hierarchy)", st.ID)
}

// frozen reports whether the freezer has the container frozen, or is on
// its way to it.
func (f freezer) frozen() bool {
	if f.v2 {
		data, err := os.ReadFile(filepath.Join(f.dir, "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(data)) == "1"
	}
	data, err := os.ReadFile(filepath.Join(f.dir, "freezer.state"))
	s := strings.TrimSpace(string(data))
	return err == nil && (s == "FROZEN" || s == "FREEZING")
}

// set freezes or thaws the container and waits until the kernel says it
// is done.
func (f freezer) set(freeze bool) error {
	file, value, done := "freezer.state", "THAWED", "THAWED"
	if f.v2 {
		file, value = "cgroup.freeze", "0"
	}
	if freeze {
		value, done = "FROZEN", "FROZEN"
		if f.v2 {
			value = "1"
		}
	}
	p := filepath.Join(f.dir, file)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("write %s to %s: %w", value, p, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		ok, err := f.reached(freeze, done)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %s after 10 s", f.dir, strings.ToLower(done))
		}
		time.Sleep(time.Millisecond)
	}
}

func (f freezer) reached(freeze bool, done string) (bool, error) {
	if !f.v2 {
		// Reading freezer.state moves a freeze in progress on.
		data, err := os.ReadFile(filepath.Join(f.dir, "freezer.state"))
		return strings.TrimSpace(string(data)) == done, err
	}
	data, err := os.ReadFile(filepath.Join(f.dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	want := "frozen 0"
	if freeze {
		want = "frozen 1"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line == want {
			return true, nil
		}
	}
	return false, nil
}

// pause freezes every process of a running container.
func pause(g *globals, id string) error {
	c, st, err := lockAndLoad(g.root, id)
	if err != nil {
		return err
	}
	defer c.close()
	if st.Status != specs.StateRunning {
		return fmt.Errorf("container %s is %s: only a running container can be paused", id, st.Status)
	}
	f, err := freezerOf(st)
	if err != nil {
		return err
	}
	if err := f.set(true); err != nil {
		_ = f.set(false)
		return fmt.Errorf("pause %s: %w", id, err)
	}
	return nil
}

// resume thaws a paused container.
func resume(g *globals, id string) error {
	c, st, err := lockAndLoad(g.root, id)
	if err != nil {
		return err
	}
	defer c.close()
	if st.Status != statePaused {
		return fmt.Errorf("container %s is %s: only a paused container can be resumed", id, st.Status)
	}
	f, err := freezerOf(st)
	if err != nil {
		return err
	}
	if err := f.set(false); err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	return nil
}

// pausedStatus is status for a container whose init runs: paused when its
// freezer has it frozen.
func pausedStatus(st *State, status specs.ContainerState) specs.ContainerState {
	if status != specs.StateRunning {
		return status
	}
	if f, err := freezerOf(st); err == nil && f.frozen() {
		return statePaused
	}
	return status
}

// thaw lets a paused container's processes run again, so that they can
// die: a process frozen in a v1 freezer does not act on SIGKILL.
func thaw(st *State) error {
	f, err := freezerOf(st)
	if err != nil || !f.frozen() {
		return nil
	}
	if err := f.set(false); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
