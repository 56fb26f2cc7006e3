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
// profile, taken as a Go value from github.com/moby/profiles/seccomp.
//
// The work is split in two, as cilium/ebpf splits spec and load:
//
//   - Resolve (spec.go) is pure: profile + Env (capabilities, kernel,
//     architecture) -> Filter, a flat list of Rule, one syscall each, with
//     every condition evaluated and every action, operator and
//     architecture validated. It is what --print shows, and unit tests run
//     it for any Env without touching the kernel.
//   - Compile and Load (load.go) turn a Filter into BPF with libseccomp and
//     load it. Tests export the BPF instead and run crafted seccomp_data
//     records through a userspace classic-BPF interpreter.
//
// # Which capabilities the conditions see
//
// Docker evaluates "caps" conditions against the container's bounding
// set, the capabilities it could ever gain. barco evaluates them against
// the process itself, at the time the stage runs: with no_new_privs set
// (the default), exec can never raise the capabilities above the current
// permitted set, so that set is what PROGRAM can ever hold, and it is
// used. With --allow-new-privs a setuid or file-capability program may gain
// anything in the bounding set, so the bounding set is used, as Docker does.
//
// # Compatibility notes
//
// As runc: a syscall name that libseccomp does not know for this
// architecture is skipped (logged under BARCO_DEBUG); a rule whose action
// is the default action is dropped; several conditions on one argument
// index are OR-ed (each becomes a rule of its own; runc issue 2735);
// errno and trace default to EPERM. SCMP_ACT_NOTIFY is refused: there is
// no listener.
package seccomp
