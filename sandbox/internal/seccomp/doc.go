// Package seccomp caches compiled seccomp programs and loads them: a runtime-spec profile is
// compiled to raw BPF (package compiler: libseccomp and a compact emitter) by the helper binary
// bulwark-seccomp, which the runtime executes only on a cache miss (Helper), and the container's
// init loads the program without cgo as the last step before execve. Compiled programs are
// cached by profile digest so a start does not pay the ≈20 ms compile that runc and crun pay on
// every start, nor the start-up of a binary linking libseccomp.
package seccomp
