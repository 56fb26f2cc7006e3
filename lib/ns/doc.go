// Package ns is barco-ns: run PROGRAM in new namespaces.
//
// Synopsis
//
//	barco-ns [-U] [-p] [-m] [-u] [-i] [-n] [-C] [-T] [--hostname NAME]
//	         [--map-root | --uid-map C:H:N... --gid-map C:H:N...]
//	         [--uid UID] [--gid GID] [--init] [--] PROGRAM [ARG...]
//
// # Description
//
// barco-ns clones a child in the namespaces asked for and stays as its
// parent: it forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2
// and SIGWINCH, and exits with the child's status, or 128+N when it was
// killed by signal N. The child has SIGKILL as its parent-death signal,
// and leads a new session and process group (with --init, PROGRAM leads
// another one under the init), as runc and crun start a container: nothing
// inside shares a session or a process group with the caller, so nothing
// inside can push input into the caller's terminal (TIOCSTI) or signal the
// caller with kill(0, ...), and the caller's terminal signals barco-ns
// alone, which forwards each signal once.
//
// The child is PROGRAM itself when PROGRAM is a barco stage, else barco-ns
// re-executed, which then execs PROGRAM or, with --init, runs it under a
// minimal init that reaps zombies. Either way the child first does the
// setup handed to it in BARCO_NS_SETUP (chain.NSSetup): it waits on a pipe
// until barco-ns has written its uid_map, setgroups and gid_map (the
// handshake), sets the hostname, brings loopback up, and becomes root of
// the user namespace, or --uid/--gid. It enters the namespaces with all its
// capabilities as ambient, because in a new user namespace its exec happens
// before its uid is mapped; it drops the ambient set after the setup.
//
// Maps are written by a MapWriter: DirectMapWriter for root, who may map
// any range. An unprivileged caller's container root is the caller itself,
// and ids from 1 up are its ranges in /etc/subuid and /etc/subgid, written
// by HelperMapWriter through the set-user-ID newuidmap and newgidmap (by
// absolute path, with maps barco first checked to be the caller's); with
// no range the map is its own id alone, which it writes itself, setgroups
// denied. --idmap is root's only: an unprivileged user may not idmap a
// disk filesystem.
//
// Options
//
//	-U, --user     new user namespace (maps: --map-root, --uid-map, --gid-map,
//	               else /etc/subuid and /etc/subgid, else 0:100000:65536;
//	               for an unprivileged caller, 0 is the caller and its
//	               ranges follow)
//	-p, --pid      new pid namespace: the child is PID 1
//	-m, --mount    new mount namespace
//	-u, --uts      new UTS namespace; --hostname NAME sets its hostname
//	-i, --ipc      new IPC namespace
//	-n, --net      new network namespace, loopback up
//	-C, --cgroup   new cgroup namespace
//	-T, --time     new time namespace
//	--init         minimal init as PID 1
package ns
