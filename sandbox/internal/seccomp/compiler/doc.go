// Package compiler compiles a runtime-spec seccomp profile into a raw BPF program: libseccomp,
// through cgo, resolves the rules, and a compact emitter of its own writes the program with
// libseccomp's semantics in a fraction of the instructions. Only the compiler helper
// bulwark-seccomp (package sandbox/seccompc) links it, executed by the runtime on a cache miss
// (seccomp.Helper); package seccomp caches and loads the programs without libseccomp.
package compiler
