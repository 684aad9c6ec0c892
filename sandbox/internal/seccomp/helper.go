package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/besideexe"
	"bulwark.dev/bulwark/internal/headbuf"
	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/setup"
)

// HelperName is the compiler helper's file name: the runtime executes it from beside its own
// binary on a cache miss (sandbox/seccompc). It is the only binary that links libseccomp, whose
// Go binding costs every process that links it ≈0.5 ms of start-up (its init asks the library for
// its API level) and keeps it on glibc; a start whose programs are cached executes none of it.
const HelperName = "bulwark-seccomp"

// maxHelperStderr is how much of the helper's standard error a failure quotes.
const maxHelperStderr = 4 << 10

// Helper is the Compiler of a runtime: it executes bulwark-seccomp beside the running binary (a
// regular executable file of the running binary's owner that no one else may write, executed
// through the descriptor that was checked) with the runtime's build, writes it the profile as
// JSON and reads back an entry (entry.go) of the program. Any failure is an error, and so is an
// answer that is not an intact entry of this format, for this profile's digest, this
// architecture and this build's libseccomp (LibseccompVersion): the caller refuses the start.
func Helper(p *specs.LinuxSeccomp) (*Program, error) {
	digest, err := profiles.SeccompDigest(p)
	if err != nil {
		return nil, err
	}
	in, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: encode profile: %w", err)
	}
	fd, path, _, err := besideexe.Open(HelperName)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: %w", err)
	}
	defer unix.Close(fd)
	cmd := exec.Command("/proc/self/fd/"+strconv.Itoa(fd), setup.BuildID())
	cmd.Args[0] = HelperName
	cmd.Env = []string{}
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	stderr := &headbuf.Buffer{Max: maxHelperStderr}
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compile seccomp: %s: %w%s", path, err, stderr.Quoted())
	}
	return parseReply(out.Bytes(), digest)
}

// Reply is what bulwark-seccomp writes for the program it compiled with libseccomp of version
// lib: an entry in the cache's layout, whose SHA-256 the runtime checks as it checks the cache's.
func Reply(prog *Program, lib string) []byte {
	return cacheEntry{Format: cacheFormat, Digest: prog.Digest, Libseccomp: lib, Arch: runtime.GOARCH,
		Flags: prog.Flags, Notes: prog.Notes, BPF: prog.Bytes()}.marshal()
}

// parseReply is the program of a helper's reply for the profile of that digest.
func parseReply(data []byte, digest string) (*Program, error) {
	e, ok := parseEntry(data)
	switch {
	case !ok || e.Format != cacheFormat:
		return nil, fmt.Errorf("compile seccomp: %s answered no intact %s entry", HelperName, cacheFormat)
	case e.Digest != digest || e.Arch != runtime.GOARCH:
		return nil, fmt.Errorf("compile seccomp: %s compiled profile %s for %s, not %s for %s", HelperName, e.Digest, e.Arch, digest, runtime.GOARCH)
	case libseccomp != "" && e.Libseccomp != libseccomp:
		return nil, fmt.Errorf("compile seccomp: %s links libseccomp %s, this runtime was built for %s: install the binaries of one build together", HelperName, e.Libseccomp, libseccomp)
	}
	prog, err := FromBytes(e.Digest, e.BPF)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp: %s's program: %w", HelperName, err)
	}
	prog.Flags, prog.Notes = e.Flags, e.Notes
	return prog, nil
}
