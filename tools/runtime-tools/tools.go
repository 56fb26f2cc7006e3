//go:build tools

// Package tools pins the OCI conformance suite that scripts/oci-conformance
// builds: opencontainers/runtime-tools v0.9.0, its validation programs
// (validation/*) and cmd/runtimetest. This module is separate from barco's so
// that its dependencies never reach barco's go.mod.
//
// v0.9.0 has no go.mod, only Godeps. Two of its dependencies are pinned back,
// because their latest releases no longer compile with it:
//   - runtime-spec v1.0.2 (Godeps: v1.0.1-57): from v1.3.0 Pids.Limit is a
//     *int64. It also gives the suite's configs ociVersion "1.0.2", which crun
//     1.8.1 accepts (it refuses any version without "1.0" in it).
//   - selinux v1.10.2 (Godeps: v1.1-1): later releases drop label.FileLabel,
//     which runtimetest calls.
//
// The others are what `go mod tidy` resolved.
package tools

import (
	_ "github.com/opencontainers/runtime-tools/cmd/runtimetest"
	_ "github.com/opencontainers/runtime-tools/validation/util"
)
