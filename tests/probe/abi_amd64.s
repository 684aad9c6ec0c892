#include "textflag.h"

// func int80(trap uintptr) uintptr
// A system call through the i386 entry (int $0x80) with no arguments: seccomp sees
// AUDIT_ARCH_I386, which the floor's filter does not allow.
TEXT ·int80(SB),NOSPLIT,$0-16
	MOVQ trap+0(FP), AX
	XORQ BX, BX
	XORQ CX, CX
	XORQ DX, DX
	INT $0x80
	MOVQ AX, ret+8(FP)
	RET
