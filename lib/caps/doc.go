// Package caps sets the user, groups and the five capability sets of a
// process before it execs its program: barco's setpriv.
//
// # Synopsis
//
//	barco-caps [--caps LIST|all|none] [--cap-add LIST] [--cap-drop LIST]
//	           [--ambient LIST] [--user UID|NAME[:GID|GROUP]] [--groups LIST]
//	           [--no-new-privs] [--print] [--] PROGRAM [ARG...]
//
// # Description
//
// PROGRAM keeps Docker's 14 default capabilities (DockerDefault), or the
// --caps set, with --cap-add and --ambient added and --cap-drop removed:
// that set bounds everything PROGRAM and its children can ever hold. Run as
// root, PROGRAM holds all of it, permitted and effective. Run as another
// user (--user), it holds only the capabilities named explicitly, through
// the ambient set, as setpriv's users expect; Docker's default set alone
// gives a non-root user nothing. See Resolve for the exact rules and Apply
// for the order in which the kernel accepts the changes.
//
// User and group names come from /etc/passwd and /etc/group of the current
// root: inside the chain barco-caps runs after barco-mount, so they are the
// container's. The parser here reads the files itself (Accounts), because
// the C library's NSS would read the host's, and the stage is static.
//
// Capability names are written as in capabilities(7), in any case, with or
// without the CAP_ prefix: CAP_NET_RAW, net_raw. "all" means every
// capability the caller holds; a capability the caller lacks cannot be
// passed on and is an error.
//
// Split as the rest of barco: Spec and Resolve are pure and unit-tested;
// Apply and CurrentCaller touch the kernel.
package caps
