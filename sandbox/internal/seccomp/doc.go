// Package seccomp turns a runtime-spec seccomp profile into a raw BPF program in the parent
// (libseccomp, through cgo, resolves the rules; a compact emitter of its own writes the program
// with libseccomp's semantics in a fraction of the instructions) and loads that program in the
// container's init without cgo, as the last step before execve. Compiled programs are cached by
// profile digest so a start does not pay the ≈20 ms compile that runc and crun pay on every start.
package seccomp
