# barco: build, root filesystem, tests, benchmark. Run as root: `make demo`, `make test`.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X barco/lib/chain.Version=$(VERSION)
CMDS    := $(notdir $(wildcard cmd/*))
BINS    := $(addprefix bin/,$(CMDS))
ROOTFS  := build/rootfs
DEBIAN  := build/debian
STATICCHECK ?= v0.8.2

.PHONY: all setup rootfs debian test lint unit demo bench bench-engines engines engines-test engines-stop oci-conformance clean FORCE

all: $(BINS)

# Every stage is pure Go, static by construction. barco-seccomp too: it has
# libseccomp's syscall tables as generated Go (lib/seccomp/zsyscalls.go);
# libseccomp itself (cgo) is for its tests and `go generate` only.
bin/%: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

# Installs what a fresh Debian 12 machine lacks; does nothing when all is there.
setup:
	@scripts/setup

# The default root filesystem: busybox-static, no libc, root and nobody.
rootfs: $(ROOTFS)/.barco-rootfs

$(ROOTFS)/.barco-rootfs: scripts/mkrootfs
	scripts/mkrootfs $(ROOTFS)

# A Debian root filesystem for the tests of a real distribution (about a
# minute, once per machine).
debian: $(DEBIAN)/.barco-rootfs

$(DEBIAN)/.barco-rootfs: scripts/mkdebian
	scripts/mkdebian $(DEBIAN)

lint:
	@out=$$(gofmt -l cmd lib tests 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet -tags engines ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) -tags engines ./...

# Unit tests only: no root, no built binaries.
unit:
	$(GO) test -count=1 ./lib/...

# Every test. The end-to-end tests in tests/ run bin/* as root on $(ROOTFS);
# then podman, containerd and Docker with barco as their runtime, and the
# OCI conformance suite, gated at the files that pass on this kind of
# machine (31 of 58 here; one may fail on a loaded machine: see README).
test: setup all rootfs debian lint
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) engines-test
	scripts/oci-conformance --min-pass 30 bin/barco

# A container on the default rootfs, through the whole chain.
demo: setup all rootfs
	bin/barco run -- /bin/sh -c 'echo "hello from $$(hostname): pid $$$$, uid $$(id -u), $$(grep Seccomp: /proc/self/status)"; ls /'

# Start latency and host memory, side by side with runc, crun and bwrap.
bench: setup all rootfs
	@for p in runc crun bubblewrap; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc crun bubblewrap >/dev/null; break; }; done
	$(GO) run ./bench

# The same engines, `run --rm IMAGE true` twenty times each with barco,
# runc and crun side by side (a few minutes; build/bench-engines.json).
bench-engines: setup all rootfs
	@scripts/engines start
	@$(GO) run ./bench -engines; status=$$?; scripts/engines clean; exit $$status

# The OCI conformance suite (runtime-tools v0.9.0, 58 files, a minute or
# two) against an OCI runtime: `make oci-conformance RUNTIME=runc`, or
# RUNTIME=crun OCI_FLAGS=--hide-unified. `make test` runs it on barco.
RUNTIME   ?= bin/barco
OCI_FLAGS ?=
oci-conformance: $(if $(filter bin/%,$(RUNTIME)),$(RUNTIME))
	scripts/oci-conformance $(OCI_FLAGS) $(RUNTIME)

# podman, containerd (ctr) and Docker with barco as their OCI runtime
# (tests/engines_test.go, a minute or two): scripts/engines installs them
# from Debian and runs them privately in /run/barco-engines, started here
# and removed afterwards, images and state included. RUNTIME=runc or RUNTIME=crun runs the same tests
# with that runtime. Part of `make test`.
engines-test: setup all rootfs
	@scripts/engines start
	@BARCO_ENGINES_RUNTIME=$(if $(filter bin/%,$(RUNTIME)),$(CURDIR)/$(RUNTIME),$(RUNTIME)) \
		$(GO) test -tags engines -count=1 -timeout 20m -parallel 3 -run '^TestEngines$$' -v ./tests; \
		status=$$?; scripts/engines clean; exit $$status

# The engines, started and left running, with their wrappers in
# /run/barco-engines/bin (`scripts/engines env`); `make engines-stop`.
engines: setup all rootfs
	scripts/engines start

engines-stop:
	scripts/engines stop

clean:
	[ "$$(id -u)" != 0 ] || scripts/engines clean
	rm -rf bin build
