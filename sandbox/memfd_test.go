package sandbox

import (
	"testing"

	"bulwark.dev/bulwark/sandbox/internal/seccomp/compiler"
)

// A kernel without vm.memfd_noexec (before 6.3) cannot make memfds non-executable: the floor
// stacks a program refusing memfd_create on top of the default one instead (fail closed).
func TestNoMemfdNoexecStacksMemfdRefusal(t *testing.T) {
	r := floorRuntime(t)
	defer func(f func() bool) { memfdNoexecSupported = f }(memfdNoexecSupported)
	for _, supported := range []bool{true, false} {
		memfdNoexecSupported = func() bool { return supported }
		blobs, err := r.compileSeccomp(nil)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if !supported {
			want = 2
		}
		if len(blobs) != want {
			t.Fatalf("vm.memfd_noexec supported=%v: %d programs, want %d", supported, len(blobs), want)
		}
		if !supported {
			p, err := compiler.Compile(noMemfdProfile)
			if err != nil {
				t.Fatal(err)
			}
			if blobs[1].Digest != p.Digest {
				t.Errorf("second program is %s, want the memfd_create refusal %s", blobs[1].Digest, p.Digest)
			}
		}
	}
	if err := raiseMemfdNoexec(-1); err != nil {
		t.Errorf("without vm.memfd_noexec nothing is raised, got %v", err)
	}
}
