module barco

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/moby/profiles/seccomp v0.3.0
	github.com/opencontainers/runtime-spec v1.2.1
	github.com/seccomp/libseccomp-golang v0.11.1
	golang.org/x/sys v0.50.0
	kernel.org/pub/linux/libs/security/libcap/cap v1.2.78
)

require kernel.org/pub/linux/libs/security/libcap/psx v1.2.78 // indirect

// A stage lives for a few milliseconds: GOMAXPROCS need not follow the
// cgroup's CPU limit (Go 1.25), nor be updated while it runs.
godebug (
	containermaxprocs=0
	updatemaxprocs=0
)
