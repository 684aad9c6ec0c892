// Package oneproc gives a command line process (bulwark-runc) one P — GOMAXPROCS 1 — from the
// start of its package initialization: a blank import is all it takes, and nothing depends on it
// but speed.
//
// Such a command is one sequence that waits on system calls and its children; its goroutines
// overlap waits, not computation. With a second P the runtime kept a second cache of heap spans
// (the same allocations faulted in a second set of pages), and a goroutine started while that P
// sat idle woke it on a new thread (a clone, its stacks faulted in). A goroutine blocked in a
// system call still hands its P on (sysmon's retake), so the waits still overlap.
//
// It is set in an init, not in main: dropping a P that has allocated returns every span it
// cached to the heap's central lists, whose first use of each faults in a page (about 40 faults
// when main set it after the other packages' initialization had run on the second P). Packages
// are initialized in the order of their import paths as soon as what they import is, and this
// one imports only the runtime, so its init runs before nearly every other.
package oneproc

import "runtime"

func init() { runtime.GOMAXPROCS(1) }
