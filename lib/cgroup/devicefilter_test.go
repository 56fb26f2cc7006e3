package cgroup

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// referenceFilter is the device program as cilium/ebpf's assembler
// writes it, the way barco built it before it encoded the instructions
// itself: the encodings must be the same, bit for bit.
func referenceFilter(rules []DeviceRule) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	for i, r := range rules {
		next := "rule" + strconv.Itoa(i+1)
		var block asm.Instructions
		switch r.Type {
		case 'c':
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevChar, next))
		case 'b':
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevBlock, next))
		}
		var allowed int32
		for _, a := range r.Access {
			allowed |= map[rune]int32{'m': bpfAccMknod, 'r': bpfAccRead, 'w': bpfAccWrite}[a]
		}
		if allowed != bpfAccMknod|bpfAccRead|bpfAccWrite {
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
	return append(insns, deny...)
}

// order is the byte order cilium/ebpf's Marshal takes for this machine.
func order() binary.ByteOrder {
	if littleEndian {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

func encode(t *testing.T, prog []bpfInsn) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, prog); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeviceFilterMatchesCiliumAssembler(t *testing.T) {
	rule := func(s string) DeviceRule {
		r, err := ParseDeviceRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, rules := range [][]DeviceRule{
		nil,
		DefaultDevices,
		append(append([]DeviceRule{}, DefaultDevices...), rule("c 10:200 rwm"), rule("b 8:* r"), rule("a *:* m"), rule("a 4:5 w")),
	} {
		prog, err := deviceFilter(rules)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := referenceFilter(rules).Marshal(&want, order()); err != nil {
			t.Fatal(err)
		}
		if got := encode(t, prog); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%d rules: the program differs from cilium/ebpf's:\n got % x\nwant % x", len(rules), got, want.Bytes())
		}
	}
	if _, err := deviceFilter([]DeviceRule{{'x', 1, 1, "r"}}); err == nil {
		t.Error("unknown device type accepted")
	}
}

// The kernel's verifier takes the program as loadDeviceFilter loads it,
// and cilium/ebpf reads back the same instructions from the kernel.
func TestDeviceFilterLoads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	prog, err := deviceFilter(DefaultDevices)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := loadDeviceFilter(prog)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != ebpf.CGroupDevice {
		t.Errorf("program type %v", info.Type)
	}
	if insns, err := info.Instructions(); err != nil {
		t.Logf("no instructions read back: %v", err)
	} else {
		var got bytes.Buffer
		insns.Marshal(&got, order())
		if !bytes.Equal(got.Bytes(), encode(t, prog)) {
			t.Errorf("the kernel holds another program:\n%v", insns)
		}
	}
	// A program that does not end is refused, with the verifier's word.
	_, err = loadDeviceFilter(prog[:3])
	if err == nil || !strings.Contains(err.Error(), "(verifier: ") || strings.Contains(err.Error(), "processed") {
		t.Errorf("a program without exit: %v", err)
	}
}
