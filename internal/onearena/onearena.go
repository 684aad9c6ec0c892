// Package onearena makes the C library's malloc keep one arena for every thread of a command
// line process (bulwark-runc, bulwark): a blank import is all it takes, and nothing depends on it
// but speed.
//
// In a cgo binary every thread the Go runtime starts is a pthread, and glibc gives each thread
// that first frees or allocates (cgo's thread start frees its argument) an arena of its own: a
// 128 MB reservation trimmed to 64 MB, a 132 KB mprotect and its first pages faulted in, for
// each of the eight threads of a `bulwark-runc run` (four for --version). The C code these
// commands call (libseccomp on a seccomp cache miss, a few small helpers) allocates little, from
// one thread at a time, so one arena costs no contention. The setting must be in place before
// the Go runtime starts its first thread, hence a C constructor: constructors run before the
// runtime's start-up.
package onearena

/*
#include <stdlib.h> // defines __GLIBC__ with glibc

// musl (bulwark-init's C library) has no arenas, nor mallopt.
#ifdef __GLIBC__
#include <malloc.h>

__attribute__((constructor)) static void bulwark_onearena(void) {
	// A failure leaves glibc's default (an arena per thread): slower, nothing else.
	mallopt(M_ARENA_MAX, 1);
}
#endif
*/
import "C"
