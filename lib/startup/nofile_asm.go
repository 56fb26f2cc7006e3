//go:build amd64 || arm64

package startup

// getNofile is prlimit64(0, RLIMIT_NOFILE, NULL, lim), in assembly:
// imported, package syscall would be initialised before this one.
func getNofile(lim *[2]uint64) (errno uintptr)
