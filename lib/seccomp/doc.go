// Package seccomp is barco-seccomp: Docker-compatible seccomp profiles.
//
// # Synopsis
//
//	barco-seccomp [--profile default|unconfined|FILE] [--allow-new-privs] [--] PROGRAM [ARG...]
//	barco-seccomp [--profile ...] --print
//
// # Description
//
// A profile is the Docker/OCI JSON format (moby's Seccomp type): a default
// action, architectures or an archMap, and syscall groups with an action,
// an errno, argument conditions, and includes/excludes on capabilities,
// architectures and a minimum kernel. "default" is Docker's default
// profile, taken as a Go value from github.com/moby/profiles/seccomp (no
// JSON is parsed for it).
//
// The work is split as cilium/ebpf splits spec and load:
//
//   - Resolve (spec.go) is pure: profile + Env (capabilities, kernel,
//     architecture) -> Filter, a flat list of Rule, one syscall each, with
//     every condition evaluated and every action, operator and
//     architecture validated. It is what --print shows; unit tests run it
//     for any Env.
//   - Assemble (bpf.go) is pure too: Filter + syscall numbers -> classic
//     BPF. It checks the architecture, finds the syscall by a binary
//     search over ranges of numbers that end alike, then checks the
//     arguments: a run of rules on one argument by a search over its
//     values, other rules one by one; equal checks are emitted once. The
//     assembler (bpfasm.go) puts a trampoline after a jump too far for
//     classic BPF.
//   - Compile (load.go) numbers the syscalls from libseccomp's tables,
//     generated into Go as static arrays with a hash index (zsyscalls.go,
//     by internal/gensyscalls), and Load installs the program with
//     seccomp(2), SECCOMP_FILTER_FLAG_TSYNC, after PR_SET_NO_NEW_PRIVS.
//
// barco generates the BPF itself because libseccomp's compiler takes about
// 40 ms for Docker's profile on amd64+x86+x32, on every container start;
// in a new process, Resolve and Compile together take about 0.3 ms, for a
// program of 280 instructions that the kernel loads in about 0.15 ms, and
// the binary is pure Go (linking libseccomp and a static libc cost another
// 2 ms a start). libseccomp stays the reference: the tests compile every
// filter with it as well, and run every syscall number of amd64, x32, x86,
// arm64 and arm (every 32-bit value, through the numbers either program
// compares with), with crafted arguments, through both programs in a
// userspace BPF interpreter (bpfvm_test.go); the verdicts must be equal.
// Another test checks the generated tables against the installed
// libseccomp.
//
// # Which capabilities the conditions see
//
// Docker evaluates "caps" conditions against the container's bounding
// set, the capabilities it could ever gain. barco evaluates them against
// the process itself, when the stage runs: with no_new_privs set (the
// default), exec can never raise capabilities above the current permitted
// set, so that set is what PROGRAM can ever hold, and it is used. With
// --allow-new-privs, a setuid or file-capability program may gain anything
// in the bounding set, so the bounding set is used, as Docker does.
//
// # Compatibility notes
//
// As runc and libseccomp: a syscall name unknown on every architecture of
// the filter is skipped (logged under BARCO_DEBUG, listed by --print); a
// rule whose action is the default action is dropped; several conditions
// on one argument index are OR-ed, each becoming a rule of its own (runc
// issue 2735); errno and trace default to EPERM; arguments are compared on
// 64 bits, on their low 32 bits for x86, x32 and arm; a foreign
// architecture is killed (SECCOMP_RET_KILL_THREAD); on x86-64 without x32
// in the filter, x32 syscall numbers are too, except -1. On x86, a rule for
// a call that socketcall(2) or ipc(2) multiplex applies to the direct
// syscall and to the multiplexer with the call number in arg0; the other
// arguments are behind a pointer there and are not checked, as with
// libseccomp.
//
// As runc, and unlike libseccomp alone: when the default action denies, a
// syscall numbered above the last one the profile names on its ABI gets
// ENOSYS, so that programs fall back from calls newer than the profile
// (--print shows the numbers).
//
// Where libseccomp refuses or leaves unspecified: for one syscall,
// conditional rules are tried in profile order before the unconditional
// one; two unconditional rules with different actions are an error.
// SCMP_ACT_NOTIFY is refused (there is no listener). barco generates code
// for amd64, x86, x32, arm64, arm and riscv64, and runs only where one of
// them is native; other architectures a profile names cannot occur there
// and are left out (--print says so).
package seccomp
