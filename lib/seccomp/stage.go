package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"barco/lib/chain"
	"golang.org/x/sys/unix"
)

// Profile names that are not files.
const (
	ProfileDefault    = "default"
	ProfileUnconfined = "unconfined"
)

// Config is what barco-seccomp was asked to do.
type Config struct {
	Profile       string // ProfileDefault, ProfileUnconfined or a file
	AllowNewPrivs bool   // do not set no_new_privs
	Log           *chain.Log
	// Child, if set, is the state of the child the filter is for (see
	// chain.Inline): its no_new_privs and capabilities, not this
	// process's, decide the conditions.
	Child *chain.ChildState
}

// capSet is the set the conditions read: see the package documentation.
func (c *Config) capSet() CapSet {
	if !c.AllowNewPrivs {
		return Permitted
	}
	// Set earlier in the chain: exec cannot raise capabilities anyway.
	if c.Child != nil {
		if c.Child.NoNewPrivs {
			return Permitted
		}
	} else if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && nnp == 1 {
		return Permitted
	}
	return Bounding
}

// IsInline reports whether a PROFILE argument is the profile's JSON itself
// rather than a file's name: it starts with "{". barco run passes a host
// file's profile that way, since barco-seccomp runs after pivot_root, where
// no host path can be reached; Docker's client hands its daemon the
// contents of a --security-opt seccomp=FILE the same way.
func IsInline(name string) bool { return strings.HasPrefix(name, "{") }

// profileName names a PROFILE argument in messages.
func profileName(name string) string {
	if IsInline(name) {
		return "(inline JSON)"
	}
	return name
}

// LoadProfile reads the named profile; nil means unconfined.
func LoadProfile(name string) (*Profile, error) {
	switch name {
	case ProfileDefault:
		return DefaultProfile(), nil
	case ProfileUnconfined:
		return nil, nil
	}
	if IsInline(name) {
		p, err := ParseProfile([]byte(name))
		if err != nil {
			return nil, fmt.Errorf("profile (inline JSON): %w", err)
		}
		return p, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, chain.WithHint(fmt.Errorf("read profile: %w", err),
				"a file is read in the current root, the container's after barco-mount: give a host file's JSON itself as PROFILE, as barco run does")
		}
		return nil, fmt.Errorf("read profile: %w", err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", name, err)
	}
	return p, nil
}

// Prepared is a profile resolved for this process and compiled, not yet
// loaded. A nil Program means unconfined.
type Prepared struct {
	Profile    string
	Env        Env
	CapSet     CapSet
	Filter     *Filter
	Program    *Program
	NoNewPrivs bool
	log        *chain.Log
}

// Prepare reads, resolves and compiles the profile for the running
// process. Nothing is loaded.
func Prepare(cfg *Config) (*Prepared, error) {
	// Timed and reported only under BARCO_DEBUG, and the report waits
	// until the work is done, so that it does not count itself.
	debug, log := cfg.Log.On(), cfg.Log
	var start, resolved, compiled time.Time
	if debug {
		start = time.Now()
	}
	p, err := LoadProfile(cfg.Profile)
	if err != nil {
		return nil, err
	}
	out := &Prepared{Profile: profileName(cfg.Profile), CapSet: cfg.capSet(), NoNewPrivs: !cfg.AllowNewPrivs, log: cfg.Log}
	if p == nil {
		log.Debugf("profile unconfined: no filter is loaded")
		return out, nil
	}
	var env Env
	if cfg.Child != nil {
		env, err = ChildEnv(out.CapSet, cfg.Child)
	} else {
		env, err = HostEnv(out.CapSet)
	}
	if err != nil {
		return nil, err
	}
	out.Env = env
	f, err := Resolve(p, env)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", out.Profile, err)
	}
	out.Filter = f
	if debug {
		resolved = time.Now()
	}
	prog, err := Compile(f)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", out.Profile, err)
	}
	out.Program = prog
	if debug {
		compiled = time.Now()
		log.Debugf("profile %s resolved to %d rules for %s (%s set) in %v",
			out.Profile, len(f.Rules), env, out.CapSet, resolved.Sub(start))
		for _, name := range prog.IgnoredArches {
			log.Debugf("architecture %s: cannot occur on %s, left out", name, env.Arch)
		}
		for _, name := range prog.Skipped {
			log.Debugf("syscall %s: unknown to libseccomp on %s, skipped", name, strings.Join(f.Arches, ","))
		}
		log.Debugf("compiled to %d BPF instructions in %v", len(prog.Instructions), compiled.Sub(resolved))
	}
	return out, nil
}

// WriteText prints the resolved rules, as --print shows them.
func (p *Prepared) WriteText(w io.Writer) error {
	if p.Filter == nil {
		_, err := fmt.Fprintf(w, "# profile %s: no filter\n", p.Profile)
		return err
	}
	fmt.Fprintf(w, "# profile %s; %s (%s set)\n", p.Profile, p.Env, p.CapSet)
	if len(p.Program.IgnoredArches) > 0 {
		fmt.Fprintf(w, "# architectures left out (cannot occur here): %s\n", strings.Join(p.Program.IgnoredArches, " "))
	}
	if denies(p.Filter.Default) && len(p.Program.LastSyscalls) > 0 {
		var lasts []string
		for _, arch := range p.Filter.Arches {
			if last, ok := p.Program.LastSyscalls[arch]; ok {
				lasts = append(lasts, fmt.Sprintf("%s above %d", arch, last&^x32SyscallBit))
			}
		}
		fmt.Fprintf(w, "# newer than the profile, ENOSYS: %s\n", strings.Join(lasts, ", "))
	}
	if len(p.Program.Skipped) > 0 {
		fmt.Fprintf(w, "# unknown to libseccomp, skipped: %s\n", strings.Join(p.Program.Skipped, " "))
	}
	return p.Filter.WriteText(w)
}

// Load installs the filter, if there is one.
func (p *Prepared) Load() error {
	if p.Program == nil {
		return nil
	}
	var start time.Time
	if p.log.On() {
		start = time.Now()
	}
	if err := p.Program.Load(p.NoNewPrivs); err != nil {
		return err
	}
	if p.log.On() {
		p.log.Debugf("filter loaded in %v", time.Since(start))
	}
	return nil
}
