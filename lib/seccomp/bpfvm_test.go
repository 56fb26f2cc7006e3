package seccomp

import (
	"encoding/binary"
	"fmt"
)

// A userspace classic-BPF interpreter, as gVisor tests its filters: the
// exported program runs against crafted seccomp_data records, and no
// filter is loaded into the test process.

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(b[4:], d.arch)
	binary.NativeEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

type bpfInsn struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

func decodeBPF(raw []byte) ([]bpfInsn, error) {
	if len(raw)%8 != 0 {
		return nil, fmt.Errorf("BPF program of %d bytes: not whole instructions", len(raw))
	}
	prog := make([]bpfInsn, len(raw)/8)
	for i := range prog {
		r := raw[8*i:]
		prog[i] = bpfInsn{binary.NativeEndian.Uint16(r), r[2], r[3], binary.NativeEndian.Uint32(r[4:])}
	}
	return prog, nil
}

// Instruction classes and fields of linux/bpf_common.h.
const (
	bpfLD, bpfLDX, bpfST, bpfSTX, bpfALU, bpfJMP, bpfRET, bpfMISC = 0, 1, 2, 3, 4, 5, 6, 7

	bpfW, bpfABS, bpfIMM, bpfMEM, bpfLEN = 0x00, 0x20, 0x00, 0x60, 0x80
	bpfK, bpfX, bpfA                     = 0x00, 0x08, 0x10

	bpfADD, bpfSUB, bpfMUL, bpfDIV, bpfOR, bpfAND, bpfLSH, bpfRSH, bpfNEG, bpfMOD, bpfXOR = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0
	bpfJA, bpfJEQ, bpfJGT, bpfJGE, bpfJSET                                                = 0x00, 0x10, 0x20, 0x30, 0x40
	bpfTAX, bpfTXA                                                                        = 0x00, 0x80
)

// runBPF returns the filter's 32-bit SECCOMP_RET_* value for data, with
// the kernel's checks: loads are 32-bit, aligned and within the record,
// and the program must end in a return.
func runBPF(prog []bpfInsn, data []byte) (uint32, error) {
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		src := in.k
		if in.code&bpfX != 0 {
			src = x
		}
		switch in.code & 0x07 {
		case bpfLD:
			switch in.code & 0xe0 {
			case bpfABS:
				if in.code&0x18 != bpfW || in.k%4 != 0 || int(in.k)+4 > len(data) {
					return 0, fmt.Errorf("pc %d: load of %#x not a 32-bit word of seccomp_data", pc, in.k)
				}
				a = binary.NativeEndian.Uint32(data[in.k:])
			case bpfIMM:
				a = in.k
			case bpfMEM:
				a = mem[in.k&15]
			case bpfLEN:
				a = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: load mode %#x", pc, in.code)
			}
		case bpfLDX:
			switch in.code & 0xe0 {
			case bpfIMM:
				x = in.k
			case bpfMEM:
				x = mem[in.k&15]
			case bpfLEN:
				x = uint32(len(data))
			default:
				return 0, fmt.Errorf("pc %d: ldx mode %#x", pc, in.code)
			}
		case bpfST:
			mem[in.k&15] = a
		case bpfSTX:
			mem[in.k&15] = x
		case bpfALU:
			switch in.code & 0xf0 {
			case bpfADD:
				a += src
			case bpfSUB:
				a -= src
			case bpfMUL:
				a *= src
			case bpfDIV, bpfMOD:
				if src == 0 {
					return 0, fmt.Errorf("pc %d: division by zero", pc)
				}
				if in.code&0xf0 == bpfDIV {
					a /= src
				} else {
					a %= src
				}
			case bpfOR:
				a |= src
			case bpfAND:
				a &= src
			case bpfLSH:
				a <<= src
			case bpfRSH:
				a >>= src
			case bpfNEG:
				a = -a
			case bpfXOR:
				a ^= src
			}
		case bpfJMP:
			var taken bool
			switch in.code & 0xf0 {
			case bpfJA:
				pc += int(in.k)
				continue
			case bpfJEQ:
				taken = a == src
			case bpfJGT:
				taken = a > src
			case bpfJGE:
				taken = a >= src
			case bpfJSET:
				taken = a&src != 0
			default:
				return 0, fmt.Errorf("pc %d: jump %#x", pc, in.code)
			}
			if taken {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		case bpfRET:
			if in.code&0x18 == bpfA {
				return a, nil
			}
			return in.k, nil
		case bpfMISC:
			if in.code&0xf8 == bpfTXA {
				a = x
			} else {
				x = a
			}
		}
	}
	return 0, fmt.Errorf("fell off the end of the program")
}
