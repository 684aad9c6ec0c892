// Package seccompc is the seccomp compiler helper bulwark-seccomp: the runtime executes it beside
// its own binary when a profile's program is not in its cache (seccomp.Helper). It reads the
// profile as JSON on its standard input, compiles it with libseccomp (package compiler) and
// writes the program as a cache entry on its standard output. Its first argument is the
// runtime's build: the protocol and the compiler's choices are one build's.
package seccompc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"bulwark.dev/bulwark/sandbox/internal/seccomp/compiler"
	"bulwark.dev/bulwark/sandbox/setup"
)

// Compile compiles p in this process (libseccomp): for a test binary that is its own runtime
// (sandbox.CompileSeccompInProcess).
func Compile(p *specs.LinuxSeccomp) (*seccomp.Program, error) { return compiler.Compile(p) }

// Main is bulwark-seccomp; it returns the exit status.
func Main() int {
	if err := serve(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, seccomp.HelperName+":", err)
		return 1
	}
	return 0
}

// serve compiles the profile read from r for the runtime whose build args name and writes the
// reply to w.
func serve(args []string, r io.Reader, w io.Writer) error {
	if len(args) != 1 {
		return errors.New("the runtime's seccomp compiler: it takes the runtime's build and a profile on its standard input")
	}
	if build := setup.BuildID(); args[0] != build {
		return fmt.Errorf("of build %q cannot compile for a runtime of build %q: install the binaries of one build together", build, args[0])
	}
	// The version the runtimes of this build key their caches with, and report.
	if want, got := seccomp.LibseccompVersion(), compiler.LibraryVersion(); want != "" && got != want {
		return fmt.Errorf("links libseccomp %s, but this build was stamped with %s", got, want)
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p specs.LinuxSeccomp
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("read the profile: %w", err)
	}
	prog, err := compiler.Compile(&p)
	if err != nil {
		return err
	}
	if _, err := w.Write(seccomp.Reply(prog, compiler.LibraryVersion())); err != nil {
		return fmt.Errorf("write the program: %w", err)
	}
	return nil
}
