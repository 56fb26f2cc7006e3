//go:build !amd64 && !arm64

package startup

func getNofile(lim *[2]uint64) (errno uintptr) { return 38 } // ENOSYS: not recorded
