package cgroup

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

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

// The eBPF opcodes the device program uses (linux/bpf_common.h, bpf.h).
const (
	opLoadWord = 0x61 // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
	opMov32Reg = 0xbc // BPF_ALU | BPF_MOV | BPF_X: dst = (u32)src
	opMov32Imm = 0xb4 // BPF_ALU | BPF_MOV | BPF_K: dst = (u32)imm
	opAnd32Imm = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opRsh32Imm = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	opJneImm   = 0x55 // BPF_JMP | BPF_JNE | BPF_K: if dst != imm, skip off
	opExit     = 0x95 // BPF_JMP | BPF_EXIT: return r0
	r0, r1, r2 = 0, 1, 2
	r3, r4, r5 = 3, 4, 5
)

// progLicense is the program's license, as the kernel reads it: a C string.
var progLicense = []byte("Apache-2.0\x00")

// bpfInsn is struct bpf_insn: the registers share a byte, dst_reg in the
// bit-field that comes first (the low nibble on a little-endian machine).
type bpfInsn struct {
	Code uint8
	Regs uint8
	Off  int16
	Imm  int32
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	regs := dst | src<<4
	if !littleEndian {
		regs = dst<<4 | src
	}
	return bpfInsn{Code: code, Regs: regs, Off: off, Imm: imm}
}

// deviceFilter compiles rules into a cgroup device program: cgroup v2's
// devices controller. It allows an access when one rule covers it (type,
// major, minor, and every access bit asked) and denies all else, as the v1
// controller does after "a" is written to devices.deny. Each rule is a
// block that jumps to the next one on the first test it fails.
func deviceFilter(rules []DeviceRule) ([]bpfInsn, error) {
	prog := []bpfInsn{
		insn(opLoadWord, r2, r1, 0, 0), // access_type
		insn(opMov32Reg, r3, r2, 0, 0),
		insn(opAnd32Imm, r2, 0, 0, 0xffff), // type
		insn(opRsh32Imm, r3, 0, 0, 16),     // access
		insn(opLoadWord, r4, r1, 4, 0),     // major
		insn(opLoadWord, r5, r1, 8, 0),     // minor
	}
	for _, r := range rules {
		// The tests of the block, each a jump past its end when it fails;
		// the offsets are set once the block's length is known.
		var tests []bpfInsn
		switch r.Type {
		case 'c':
			tests = append(tests, insn(opJneImm, r2, 0, 0, bpfDevChar))
		case 'b':
			tests = append(tests, insn(opJneImm, r2, 0, 0, bpfDevBlock))
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
			tests = append(tests,
				insn(opMov32Reg, r1, r3, 0, 0),
				insn(opAnd32Imm, r1, 0, 0, ^allowed),
				insn(opJneImm, r1, 0, 0, 0))
		}
		if r.Major >= 0 {
			tests = append(tests, insn(opJneImm, r4, 0, 0, int32(r.Major)))
		}
		if r.Minor >= 0 {
			tests = append(tests, insn(opJneImm, r5, 0, 0, int32(r.Minor)))
		}
		block := append(tests, insn(opMov32Imm, r0, 0, 0, 1), insn(opExit, 0, 0, 0, 0))
		for i := range tests {
			if block[i].Code == opJneImm {
				// Relative to the next instruction: past the block's end.
				block[i].Off = int16(len(block) - i - 1)
			}
		}
		prog = append(prog, block...)
	}
	return append(prog, insn(opMov32Imm, r0, 0, 0, 0), insn(opExit, 0, 0, 0, 0)), nil
}

// progLoadAttr is union bpf_attr for BPF_PROG_LOAD, up to the last field
// set; the kernel takes a shorter attr as zeros beyond it. The pointers
// are addresses of heap or global memory (the Go collector moves neither),
// kept alive across the call.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

// progAttachAttr is union bpf_attr for BPF_PROG_ATTACH.
type progAttachAttr struct {
	targetFD     uint32
	attachBPFFD  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBPFFD uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		if errno == unix.EAGAIN && cmd == unix.BPF_PROG_LOAD {
			// A signal interrupted the verifier (Linux 4.20 and later);
			// cilium/ebpf tries again too.
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// loadDeviceFilter loads prog as a cgroup device program and returns its
// descriptor. When the kernel refuses it, the verifier's last words are in
// the error: it loads again with a log for them.
func loadDeviceFilter(prog []bpfInsn) (int, error) {
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&progLicense[0]))),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	if err == nil || err == unix.EPERM {
		return fd, err
	}
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	if _, lerr := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); lerr != nil {
		err = lerr
	}
	runtime.KeepAlive(prog)
	runtime.KeepAlive(log)
	return -1, verifierError(err, log)
}

// verifierError adds to err the verifier's last complaint in log, the line
// before its closing statistics ("processed N insns ...").
func verifierError(err error, log []byte) error {
	text, _, _ := strings.Cut(string(log), "\x00")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "processed ") {
			return fmt.Errorf("%w (verifier: %s)", err, l)
		}
	}
	return err
}

// AttachDeviceFilter loads the device program for rules and attaches it to
// the cgroup v2 cgroup dir. It stays attached until the cgroup is removed.
// It is attached with BPF_F_ALLOW_MULTI, so that programs above (systemd's)
// still run: a device is usable only if all of them allow it. Two bpf()
// calls do it, as the program is a few dozen instructions built here.
func AttachDeviceFilter(dir string, rules []DeviceRule) error {
	prog, err := deviceFilter(rules)
	if err != nil {
		return err
	}
	pfd, err := loadDeviceFilter(prog)
	if err != nil {
		if err == unix.EPERM {
			return fmt.Errorf("load cgroup device program: %w (it needs CAP_BPF and CAP_SYS_ADMIN)", err)
		}
		return fmt.Errorf("load cgroup device program: %w", err)
	}
	defer unix.Close(pfd)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	attr := progAttachAttr{
		targetFD:    uint32(fd),
		attachBPFFD: uint32(pfd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return fmt.Errorf("attach cgroup device program to %s: %w", dir, err)
	}
	return nil
}
