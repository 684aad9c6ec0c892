package cgroups

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices.allow file: device access is decided by a BPF_PROG_TYPE_CGROUP_DEVICE
// program attached to the cgroup. cilium/ebpf is not a dependency, and the program is tiny and
// fixed in shape, so it is assembled here and loaded with the raw bpf(2) syscall. If loading or
// attaching fails, Create fails: there is no v2 fallback that would leave devices open.

// bpfInsn is struct bpf_insn: opcode, dst/src registers (4 bits each), offset, immediate.
type bpfInsn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

// Opcodes used by the device program (linux/bpf_common.h, linux/bpf.h).
const (
	opLdxMemW  = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opMovReg   = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X
	opMovImm   = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opAndImm   = 0x57 // BPF_ALU64 | BPF_AND | BPF_K
	opRshImm   = 0x77 // BPF_ALU64 | BPF_RSH | BPF_K
	opJneImm   = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	opExit     = 0x95 // BPF_JMP | BPF_EXIT
	accessMask = unix.BPF_DEVCG_ACC_MKNOD | unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE
)

// deviceProgram assembles: allow (return 1) when the request matches one rule's type, major,
// minor and asks for no access bit outside the rule's; otherwise deny (return 0).
//
// Registers: r1 = ctx (struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}),
// r2 = requested access, r3 = device type, r4 = major, r5 = minor, r1 reused as scratch.
func deviceProgram(rules []devRule) []bpfInsn {
	prog := []bpfInsn{
		{code: opLdxMemW, dst: 2, src: 1, off: 0},
		{code: opMovReg, dst: 3, src: 2},
		{code: opAndImm, dst: 3, imm: 0xffff},
		{code: opRshImm, dst: 2, imm: 16},
		{code: opLdxMemW, dst: 4, src: 1, off: 4},
		{code: opLdxMemW, dst: 5, src: 1, off: 8},
	}
	for _, r := range rules {
		var block []bpfInsn
		typ := int32(unix.BPF_DEVCG_DEV_CHAR)
		if r.typ == 'b' {
			typ = unix.BPF_DEVCG_DEV_BLOCK
		}
		block = append(block, bpfInsn{code: opJneImm, dst: 3, imm: typ})
		if r.major != wildcard {
			block = append(block, bpfInsn{code: opJneImm, dst: 4, imm: int32(r.major)})
		}
		if r.minor != wildcard {
			block = append(block, bpfInsn{code: opJneImm, dst: 5, imm: int32(r.minor)})
		}
		block = append(block,
			bpfInsn{code: opMovReg, dst: 1, src: 2},
			bpfInsn{code: opAndImm, dst: 1, imm: accessMask &^ accessBits(r.access)},
			bpfInsn{code: opJneImm, dst: 1, imm: 0},
			bpfInsn{code: opMovImm, dst: 0, imm: 1},
			bpfInsn{code: opExit},
		)
		// Every conditional jump skips to the end of this rule's block (offsets count from the
		// next instruction).
		for i := range block {
			if block[i].code == opJneImm {
				block[i].off = int16(len(block) - i - 1)
			}
		}
		prog = append(prog, block...)
	}
	return append(prog, bpfInsn{code: opMovImm, dst: 0, imm: 0}, bpfInsn{code: opExit})
}

func accessBits(access string) int32 {
	var bits int32
	if strings.ContainsRune(access, 'm') {
		bits |= unix.BPF_DEVCG_ACC_MKNOD
	}
	if strings.ContainsRune(access, 'r') {
		bits |= unix.BPF_DEVCG_ACC_READ
	}
	if strings.ContainsRune(access, 'w') {
		bits |= unix.BPF_DEVCG_ACC_WRITE
	}
	return bits
}

func encodeProgram(prog []bpfInsn) []byte {
	buf := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		buf = append(buf, in.code, in.dst|in.src<<4)
		buf = binary.LittleEndian.AppendUint16(buf, uint16(in.off))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(in.imm))
	}
	return buf
}

// progLoadAttr is the BPF_PROG_LOAD prefix of union bpf_attr that this loader fills.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// progAttachAttr is the BPF_PROG_ATTACH member of union bpf_attr.
type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

// attachDeviceProgram loads the program for rules and attaches it to the cgroup directory dir.
// BPF_F_ALLOW_MULTI keeps it in force for every descendant: programs a nested cgroup attaches
// run in addition and can only narrow access, never override this one.
func attachDeviceProgram(dir string, rules []devRule) error {
	code := encodeProgram(deviceProgram(rules))
	license := []byte("GPL\x00")
	logBuf := make([]byte, 64<<10)
	attr := progLoadAttr{
		progType:           unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:            uint32(len(code) / 8),
		insns:              uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:            uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel:           1,
		logSize:            uint32(len(logBuf)),
		logBuf:             uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(attr.progName[:], "bulwark_dev")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if errno != 0 {
		return fmt.Errorf("load device cgroup program: %w (verifier: %s)", errno, strings.TrimRight(string(logBuf), "\x00"))
	}
	prog := int(fd)
	defer unix.Close(prog)

	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer cg.Close()
	at := progAttachAttr{
		targetFd:    uint32(cg.Fd()),
		attachBpfFd: uint32(prog),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&at)), unsafe.Sizeof(at)); errno != 0 {
		return fmt.Errorf("attach device program to %s: %w", dir, errno)
	}
	return nil
}
