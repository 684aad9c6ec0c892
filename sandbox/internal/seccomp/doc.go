// Package seccomp turns a runtime-spec seccomp profile into a raw BPF program in the parent (with
// libseccomp, through cgo) and loads that program in the container's init without cgo, as the last
// step before execve. Compiled programs are cached by profile digest so a start does not pay the
// ≈20 ms compile that runc and crun pay on every start.
package seccomp
