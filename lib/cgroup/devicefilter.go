package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Device types and access bits of struct bpf_cgroup_dev_ctx, which a
// BPF_PROG_TYPE_CGROUP_DEVICE program gets: access_type is
// (access << 16) | type, then major, then minor, all u32.
const (
	bpfDevBlock = 1 // BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = 2 // BPF_DEVCG_DEV_CHAR
	bpfAccMknod = 1 // BPF_DEVCG_ACC_MKNOD
	bpfAccRead  = 2 // BPF_DEVCG_ACC_READ
	bpfAccWrite = 4 // BPF_DEVCG_ACC_WRITE
)

// DeviceFilter compiles rules into a cgroup device program: cgroup v2's
// devices controller. It allows an access when one rule covers it (type,
// major, minor, and every access bit asked) and denies all else, as the v1
// controller does after "a" is written to devices.deny. The program is
// plain data, the same on every machine; AttachDeviceFilter loads it.
func DeviceFilter(rules []DeviceRule) (asm.Instructions, error) {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // access_type
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.And.Imm32(asm.R2, 0xffff),            // type
		asm.RSh.Imm32(asm.R3, 16),                // access
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // minor
	}
	for i, r := range rules {
		next := "rule" + strconv.Itoa(i+1)
		var block asm.Instructions
		switch r.Type {
		case 'c':
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevChar, next))
		case 'b':
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevBlock, next))
		case 'a':
		default:
			return nil, fmt.Errorf("device rule %s: unknown type %q", r, r.Type)
		}
		var allowed int32
		for _, a := range r.Access {
			switch a {
			case 'm':
				allowed |= bpfAccMknod
			case 'r':
				allowed |= bpfAccRead
			case 'w':
				allowed |= bpfAccWrite
			}
		}
		if allowed != bpfAccMknod|bpfAccRead|bpfAccWrite {
			// Skip the rule if the access asks for a bit it does not allow.
			block = append(block,
				asm.Mov.Reg32(asm.R1, asm.R3),
				asm.And.Imm32(asm.R1, ^allowed),
				asm.JNE.Imm(asm.R1, 0, next))
		}
		if r.Major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(r.Major), next))
		}
		if r.Minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(r.Minor), next))
		}
		block = append(block, asm.Mov.Imm32(asm.R0, 1), asm.Return())
		if i > 0 {
			block[0] = block[0].WithSymbol("rule" + strconv.Itoa(i))
		}
		insns = append(insns, block...)
	}
	deny := asm.Instructions{asm.Mov.Imm32(asm.R0, 0), asm.Return()}
	if len(rules) > 0 {
		deny[0] = deny[0].WithSymbol("rule" + strconv.Itoa(len(rules)))
	}
	return append(insns, deny...), nil
}

// AttachDeviceFilter loads the device program for rules and attaches it to
// the cgroup v2 cgroup dir. It stays attached until the cgroup is removed.
// It is attached with BPF_F_ALLOW_MULTI, so that programs above (systemd's)
// still run: a device is usable only if all of them allow it.
func AttachDeviceFilter(dir string, rules []DeviceRule) error {
	insns, err := DeviceFilter(rules)
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		License:      "Apache-2.0",
		Instructions: insns,
	}, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("load cgroup device program: %w (it needs CAP_BPF and CAP_SYS_ADMIN)", err)
		}
		return fmt.Errorf("load cgroup device program: %w", err)
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  fd,
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach cgroup device program to %s: %w", dir, err)
	}
	return nil
}
