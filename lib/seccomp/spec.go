package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"syscall"

	moby "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Profile is a seccomp profile in the Docker JSON format, moby's own type.
type Profile = moby.Seccomp

// KernelVersion is "<kernel>.<major>", as the minKernel conditions read it.
type KernelVersion = moby.KernelVersion

// DefaultProfile is Docker's default profile.
func DefaultProfile() *Profile { return moby.DefaultProfile() }

// Env is what a profile's conditions are evaluated against.
type Env struct {
	Arch   string // native architecture in libseccomp's naming: "amd64", "arm64", ...
	Kernel KernelVersion
	Caps   []string // "CAP_CHOWN", ...
}

// ActionKind is what the kernel does with a matching syscall.
type ActionKind int

const (
	ActAllow ActionKind = iota
	ActErrno
	ActKillThread
	ActKillProcess
	ActTrap
	ActTrace
	ActLog
)

// Action is an ActionKind with its data: the errno of ActErrno, the
// message of ActTrace.
type Action struct {
	Kind ActionKind
	Ret  uint
}

// actionKinds are the profile's action names. This file's tables are
// slices, not maps: static data, nothing built when a stage starts.
var actionKinds = [...]struct {
	name specs.LinuxSeccompAction
	kind ActionKind
}{
	{specs.ActAllow, ActAllow},
	{specs.ActErrno, ActErrno},
	{specs.ActKill, ActKillThread},
	{specs.ActKillThread, ActKillThread},
	{specs.ActKillProcess, ActKillProcess},
	{specs.ActTrap, ActTrap},
	{specs.ActTrace, ActTrace},
	{specs.ActLog, ActLog},
}

func (a Action) String() string {
	switch a.Kind {
	case ActAllow:
		return "allow"
	case ActErrno:
		if name := unix.ErrnoName(syscall.Errno(a.Ret)); name != "" {
			return "errno " + name
		}
		return fmt.Sprintf("errno %d", a.Ret)
	case ActKillThread:
		return "kill-thread"
	case ActKillProcess:
		return "kill-process"
	case ActTrap:
		return "trap"
	case ActTrace:
		return fmt.Sprintf("trace %d", a.Ret)
	case ActLog:
		return "log"
	}
	return fmt.Sprintf("action(%d)", int(a.Kind))
}

// maxErrno is the kernel's MAX_ERRNO: a larger SECCOMP_RET_ERRNO value
// would not read as an error in userspace.
const maxErrno = 4095

func parseAction(name specs.LinuxSeccompAction, ret *uint) (Action, error) {
	if name == specs.ActNotify {
		return Action{}, errors.New("action SCMP_ACT_NOTIFY: not supported (barco-seccomp has no notification listener)")
	}
	a := Action{Kind: -1}
	for _, k := range actionKinds {
		if k.name == name {
			a.Kind = k.kind
		}
	}
	if a.Kind < 0 {
		return Action{}, fmt.Errorf("unknown action %q", name)
	}
	switch a.Kind {
	case ActErrno, ActTrace:
		// runc's default for both.
		a.Ret = uint(unix.EPERM)
		if ret != nil {
			a.Ret = *ret
		}
		if a.Kind == ActErrno && a.Ret > maxErrno {
			return Action{}, fmt.Errorf("errnoRet %d: above %d", a.Ret, maxErrno)
		}
		if a.Ret > 0xffff {
			return Action{}, fmt.Errorf("errnoRet %d: above 65535", a.Ret)
		}
	default:
		if ret != nil {
			return Action{}, fmt.Errorf("errnoRet with action %s: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one", name)
		}
	}
	return a, nil
}

// Op compares one syscall argument.
type Op int

const (
	OpEQ Op = iota
	OpNE
	OpLT
	OpLE
	OpGT
	OpGE
	OpMaskedEQ // (arg & Value) == ValueTwo
)

// opNames are the profile's operator names, by Op.
var opNames = [...]specs.LinuxSeccompOperator{
	OpEQ:       specs.OpEqualTo,
	OpNE:       specs.OpNotEqual,
	OpLT:       specs.OpLessThan,
	OpLE:       specs.OpLessEqual,
	OpGT:       specs.OpGreaterThan,
	OpGE:       specs.OpGreaterEqual,
	OpMaskedEQ: specs.OpMaskedEqual,
}

var opSymbols = [...]string{OpEQ: "==", OpNE: "!=", OpLT: "<", OpLE: "<=", OpGT: ">", OpGE: ">="}

// Arg is a condition on one argument of a syscall.
type Arg struct {
	Index           uint
	Op              Op
	Value, ValueTwo uint64
}

func (c Arg) String() string {
	if c.Op == OpMaskedEQ {
		return fmt.Sprintf("arg%d&%#x == %#x", c.Index, c.Value, c.ValueTwo)
	}
	return fmt.Sprintf("arg%d %s %#x", c.Index, opSymbols[c.Op], c.Value)
}

// Rule applies Action to one syscall whose arguments meet every Arg.
type Rule struct {
	Syscall string
	Action  Action
	Args    []Arg
}

func (r Rule) String() string {
	s := r.Syscall + " " + r.Action.String()
	if len(r.Args) > 0 {
		conds := make([]string, len(r.Args))
		for i, a := range r.Args {
			conds[i] = a.String()
		}
		s += " if " + strings.Join(conds, " && ")
	}
	return s
}

// Filter is a resolved profile: no conditions left, everything validated.
// It is the same on every machine with the same Env.
type Filter struct {
	Default   Action
	Arches    []string // libseccomp names: "amd64", "x86", "x32"
	Log       bool     // SECCOMP_FILTER_FLAG_LOG
	SpecAllow bool     // SECCOMP_FILTER_FLAG_SPEC_ALLOW
	Rules     []Rule
}

// WriteText prints the filter as --print shows it: one line per rule,
// "SYSCALL ACTION [if CONDITION && ...]", after a header.
func (f *Filter) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "default %s\n", f.Default)
	fmt.Fprintf(&b, "arches %s\n", strings.Join(f.Arches, " "))
	if f.Log {
		b.WriteString("flag SECCOMP_FILTER_FLAG_LOG\n")
	}
	if f.SpecAllow {
		b.WriteString("flag SECCOMP_FILTER_FLAG_SPEC_ALLOW\n")
	}
	for _, r := range f.Rules {
		b.WriteString(r.String() + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// archNames are the SCMP_ARCH_* names of a profile and libseccomp's.
var archNames = [...]struct {
	scmp specs.Arch
	name string
}{
	{specs.ArchX86, "x86"},
	{specs.ArchX86_64, "amd64"},
	{specs.ArchX32, "x32"},
	{specs.ArchARM, "arm"},
	{specs.ArchAARCH64, "arm64"},
	{specs.ArchMIPS, "mips"},
	{specs.ArchMIPS64, "mips64"},
	{specs.ArchMIPS64N32, "mips64n32"},
	{specs.ArchMIPSEL, "mipsel"},
	{specs.ArchMIPSEL64, "mipsel64"},
	{specs.ArchMIPSEL64N32, "mipsel64n32"},
	{specs.ArchPPC, "ppc"},
	{specs.ArchPPC64, "ppc64"},
	{specs.ArchPPC64LE, "ppc64le"},
	{specs.ArchS390, "s390"},
	{specs.ArchS390X, "s390x"},
	{specs.ArchPARISC, "parisc"},
	{specs.ArchPARISC64, "parisc64"},
	{specs.ArchRISCV64, "riscv64"},
	{specs.ArchLOONGARCH64, "loongarch64"},
	{specs.ArchM68K, "m68k"},
	{specs.ArchSHEB, "sheb"},
	{specs.ArchSH, "sh"},
}

// archName is libseccomp's name of a profile's SCMP_ARCH_* name.
func archName(a specs.Arch) (string, bool) {
	for _, n := range archNames {
		if n.scmp == a {
			return n.name, true
		}
	}
	return "", false
}

// knownArch reports whether name is an architecture a condition may name,
// in the naming of includes/excludes ("amd64", "x32", "arm64", ...).
func knownArch(name string) bool {
	return scmpArch(name) != ""
}

func scmpArch(native string) specs.Arch {
	for _, n := range archNames {
		if n.name == native {
			return n.scmp
		}
	}
	return ""
}

// ParseProfile decodes a JSON profile. A syntax or type error names its
// line and column; unknown fields are errors, so that a misspelt
// "errnoRet" is not silently EPERM.
func ParseProfile(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	err := dec.Decode(&p)
	if err == nil {
		// One JSON value and nothing after it.
		if _, terr := dec.Token(); terr != io.EOF {
			off := dec.InputOffset()
			return nil, fmt.Errorf("%s: data after the profile", position(data, off))
		}
		return &p, nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return nil, fmt.Errorf("%s: %s", position(data, syn.Offset), syn.Error())
	case errors.As(err, &typ):
		what := typ.Value
		if typ.Field != "" {
			// Drop the names of moby's embedded runtime-spec structs.
			field := strings.NewReplacer("LinuxSeccomp.", "", "LinuxSyscall.", "").Replace(typ.Field)
			what = typ.Value + " for " + field
		}
		return nil, fmt.Errorf("%s: cannot use %s (want %s)", position(data, typ.Offset), what, jsonKind(typ.Type))
	case errors.Is(err, io.EOF):
		return nil, errors.New("empty profile")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%s: unexpected end of profile", position(data, int64(len(data))))
	}
	return nil, errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names what JSON value a Go type takes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a number from 0 up"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

// position is "line L column C" of a byte offset as encoding/json reports
// it (the number of bytes read before the error).
func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off > 0 {
		off-- // point at the offending byte, not after it
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d column %d", line, col)
}

// Resolve evaluates the profile's conditions against env and validates
// what remains, as Docker's setupSeccomp and runc's InitSeccomp do
// between them.
func Resolve(p *Profile, env Env) (*Filter, error) {
	if p.DefaultAction == "" {
		return nil, errors.New("profile has no defaultAction")
	}
	def, err := parseAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	f := &Filter{Default: def}
	if p.ListenerPath != "" {
		return nil, errors.New("listenerPath: not supported (barco-seccomp has no notification listener)")
	}
	for _, fl := range p.Flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			f.Log = true
		case specs.LinuxSeccompFlagSpecAllow:
			f.SpecAllow = true
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// Always set: the stage is a multi-threaded Go program.
		default:
			return nil, fmt.Errorf("unknown or unsupported flag %q", fl)
		}
	}
	if err := resolveArches(p, env, f); err != nil {
		return nil, err
	}
	// The JSON decoder fills Profile.Syscalls; moby's embedded
	// LinuxSeccomp.Syscalls is only set by Go code that misuses the type.
	if len(p.LinuxSeccomp.Syscalls) != 0 {
		return nil, errors.New("profile sets LinuxSeccomp.Syscalls; use Syscalls")
	}
	// Room for every rule the syscall groups can make, so that the list
	// is allocated once.
	n := 0
	for _, call := range p.Syscalls {
		if call != nil {
			n += (len(call.Names) + 1) * max(1, len(call.Args))
		}
	}
	f.Rules = make([]Rule, 0, n)
	for i, call := range p.Syscalls {
		if call == nil {
			return nil, fmt.Errorf("syscalls[%d]: null", i)
		}
		if f.Rules, err = resolveCall(call, env, def, f.Rules); err != nil {
			return nil, fmt.Errorf("syscalls[%d] (%s): %w", i, callLabel(call), err)
		}
	}
	return f, nil
}

func callLabel(c *moby.Syscall) string {
	names := c.Names
	//lint:ignore SA1019 old profiles still use "name"; Docker reads it too
	if c.Name != "" {
		//lint:ignore SA1019 as above
		names = append([]string{c.Name}, names...)
	}
	if len(names) > 3 {
		return strings.Join(names[:3], ",") + ",..."
	}
	return strings.Join(names, ",")
}

func resolveArches(p *Profile, env Env, f *Filter) error {
	if len(p.Architectures) != 0 && len(p.ArchMap) != 0 {
		return errors.New("profile has both architectures and archMap; use one")
	}
	arches := p.Architectures
	native := scmpArch(env.Arch)
	for _, m := range p.ArchMap {
		if _, ok := archName(m.Arch); !ok {
			return fmt.Errorf("archMap: unknown architecture %q", m.Arch)
		}
		for _, s := range m.SubArches {
			if _, ok := archName(s); !ok {
				return fmt.Errorf("archMap: unknown architecture %q", s)
			}
		}
		if m.Arch == native && len(arches) == 0 {
			arches = append([]specs.Arch{m.Arch}, m.SubArches...)
		}
	}
	for _, a := range arches {
		name, ok := archName(a)
		if !ok {
			return fmt.Errorf("unknown architecture %q", a)
		}
		if !slices.Contains(f.Arches, name) {
			f.Arches = append(f.Arches, name)
		}
	}
	// The native architecture is always in a libseccomp filter.
	if !slices.Contains(f.Arches, env.Arch) {
		f.Arches = append([]string{env.Arch}, f.Arches...)
	}
	return nil
}

// applies evaluates includes (every condition must hold) and excludes (any
// condition excludes), as moby's setupSeccomp.
func applies(c *moby.Syscall, env Env) (bool, error) {
	if err := checkFilter(c.Includes); err != nil {
		return false, fmt.Errorf("includes: %w", err)
	}
	if err := checkFilter(c.Excludes); err != nil {
		return false, fmt.Errorf("excludes: %w", err)
	}
	if x := c.Excludes; x != nil {
		if slices.Contains(x.Arches, env.Arch) {
			return false, nil
		}
		for _, cp := range x.Caps {
			if slices.Contains(env.Caps, cp) {
				return false, nil
			}
		}
		if x.MinKernel != nil && kernelAtLeast(env.Kernel, *x.MinKernel) {
			return false, nil
		}
	}
	if in := c.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, env.Arch) {
			return false, nil
		}
		for _, cp := range in.Caps {
			if !slices.Contains(env.Caps, cp) {
				return false, nil
			}
		}
		if in.MinKernel != nil && !kernelAtLeast(env.Kernel, *in.MinKernel) {
			return false, nil
		}
	}
	return true, nil
}

func checkFilter(x *moby.Filter) error {
	if x == nil {
		return nil
	}
	for _, a := range x.Arches {
		if !knownArch(a) {
			return fmt.Errorf("unknown architecture %q", a)
		}
	}
	for _, c := range x.Caps {
		if CapNumber(c) < 0 {
			return fmt.Errorf("unknown capability %q", c)
		}
	}
	return nil
}

func kernelAtLeast(have, want KernelVersion) bool {
	return have.Kernel > want.Kernel || (have.Kernel == want.Kernel && have.Major >= want.Major)
}

// maxArgs is the number of arguments a syscall has at most.
const maxArgs = 6

// resolveCall appends the rules of one syscall group to rules.
func resolveCall(c *moby.Syscall, env Env, def Action, rules []Rule) ([]Rule, error) {
	names := c.Names
	//lint:ignore SA1019 old profiles still use "name"; Docker reads it too
	if c.Name != "" {
		if len(c.Names) != 0 {
			return rules, errors.New("both name and names; use one")
		}
		//lint:ignore SA1019 as above
		names = []string{c.Name}
	}
	if len(names) == 0 {
		return rules, errors.New("no syscall names")
	}
	for _, n := range names {
		if n == "" {
			return rules, errors.New("empty syscall name")
		}
	}
	act, err := parseAction(c.Action, c.ErrnoRet)
	if err != nil {
		return rules, err
	}
	var args []Arg
	if len(c.Args) > 0 {
		args = make([]Arg, 0, len(c.Args))
	}
	var perIndex [maxArgs]int
	for _, a := range c.Args {
		if a.Index >= maxArgs {
			return rules, fmt.Errorf("argument index %d: syscalls have 6 arguments (0-5)", a.Index)
		}
		op := Op(slices.Index(opNames[:], a.Op))
		if op < 0 {
			return rules, fmt.Errorf("unknown operator %q", a.Op)
		}
		perIndex[a.Index]++
		args = append(args, Arg{Index: a.Index, Op: op, Value: a.Value, ValueTwo: a.ValueTwo})
	}
	ok, err := applies(c, env)
	if err != nil || !ok {
		return rules, err
	}
	// Same as the default: libseccomp refuses such a rule, and it changes
	// nothing.
	if act == def {
		return rules, nil
	}
	// Conditions on the same argument are OR-ed, each its own rule, as runc
	// does (runc issue 2735); conditions on different arguments are AND-ed.
	if !slices.ContainsFunc(perIndex[:], func(n int) bool { return n > 1 }) {
		for _, n := range names {
			rules = append(rules, Rule{Syscall: n, Action: act, Args: args})
		}
		return rules, nil
	}
	for _, n := range names {
		for i := range args {
			rules = append(rules, Rule{Syscall: n, Action: act, Args: args[i : i+1 : i+1]})
		}
	}
	return rules, nil
}
