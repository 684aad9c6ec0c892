// Package op is one command of the bulwark CLI for bulwarkd (--host, BULWARK_HOST) as bulwark
// parsed its command line: bulwark, which links no HTTP client, hands it to bulwark-admin beside
// it, whose client (package client) sends it. The commands are one closed set (Command); each
// carries only the fields its command line can set, and the flags it may carry are listed here
// (RunFlags, ExecFlags), for bulwark to refuse any other rather than drop it.
package op

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// HostEnv names the daemon when --host is not given.
const HostEnv = "BULWARK_HOST"

// Env carries an Op from bulwark to bulwark-admin's Command (Hand, Take): the descriptor of a
// sealed memory file that holds it as JSON. The standard input, the output and the terminal are
// the caller's own; the file, unlike the command line, is readable only by the caller, and unlike
// one environment string (128 KiB at most) it holds a run of any size.
const Env = "_BULWARK_REMOTE_OP"

// maxOpSize bounds what Take reads.
const maxOpSize = 64 << 20

// Command is bulwark-admin's hidden command that sends the Op of Env to bulwarkd.
const Command = "__remote"

// Name is a command bulwark can send to bulwarkd.
type Name string

// The commands that go through bulwarkd.
const (
	Run         Name = "run"
	PS          Name = "ps"
	Inspect     Name = "inspect"
	Logs        Name = "logs"
	Exec        Name = "exec"
	Stop        Name = "stop"
	Kill        Name = "kill"
	Remove      Name = "rm"
	AuditVerify Name = "audit verify"
	AuditTail   Name = "audit tail"
)

// RunFlags are the bulwark run flags a run through bulwarkd carries (client.CreateRequest maps
// each); the CLI refuses any other with --host rather than drop it.
var RunFlags = []string{"name", "rm", "detach", "env", "workdir", "user", "hostname", "entrypoint",
	"memory", "pids-limit", "cpus", "cap-add", "cap-drop", "tmpfs", "dry-run"}

// ExecFlags are the bulwark exec flags an exec through bulwarkd carries.
var ExecFlags = []string{"interactive", "env", "workdir", "user"}

// Op is one command for bulwarkd at Host.
type Op struct {
	Command Name   `json:"command"`
	Host    string `json:"host"`
	// IDs are the containers the command acts on (one for logs and exec).
	IDs []string `json:"ids,omitempty"`
	// Run is bulwark run's request, DryRun its --dry-run.
	Run    *engine.Request `json:"run,omitempty"`
	DryRun bool            `json:"dryRun,omitempty"`
	// Exec is bulwark exec's request; Interactive sends the caller's standard input.
	Exec        *engine.ExecRequest `json:"exec,omitempty"`
	Interactive bool                `json:"interactive,omitempty"`
	// All and Quiet are ps's.
	All   bool `json:"all,omitempty"`
	Quiet bool `json:"quiet,omitempty"`
	// Follow and Timestamps are logs'.
	Follow     bool `json:"follow,omitempty"`
	Timestamps bool `json:"timestamps,omitempty"`
	// Timeout is stop's.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Signal is kill's, a number.
	Signal string `json:"signal,omitempty"`
	// Force and Volumes are rm's.
	Force   bool `json:"force,omitempty"`
	Volumes bool `json:"volumes,omitempty"`
	// Lines is audit tail's.
	Lines int `json:"lines,omitempty"`
}

// Hand writes o to a sealed memory file that a program this process executes inherits, and
// returns the Env entry that names it (Take reads it there).
func Hand(o *Op) (string, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("the command for bulwarkd: %w", err)
	}
	// Not close-on-exec: the descriptor is for the program executed next.
	fd, err := unix.MemfdCreate("bulwark-remote-op", unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("the command for bulwarkd: memfd: %w", err)
	}
	for rest := b; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("the command for bulwarkd: %w", err)
		}
		rest = rest[n:]
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("the command for bulwarkd: seal: %w", err)
	}
	return Env + "=" + strconv.Itoa(fd), nil
}

// Take reads the Op that Env names (Hand) and closes its file; without Env, it returns
// os.ErrNotExist. Only a sealed memory file is read: anything else is refused.
func Take() (*Op, error) {
	s, ok := os.LookupEnv(Env)
	if !ok {
		return nil, fmt.Errorf("no command for bulwarkd in %s: %w", Env, os.ErrNotExist)
	}
	os.Unsetenv(Env)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q names no descriptor", Env, s)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "bulwark-remote-op")
	defer f.Close()
	const sealed = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err != nil || seals&sealed != sealed {
		return nil, errors.New("the command for bulwarkd is not a sealed memory file")
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxOpSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the command for bulwarkd: %w", err)
	}
	if len(b) > maxOpSize {
		return nil, fmt.Errorf("the command for bulwarkd is over %d bytes", maxOpSize)
	}
	return Decode(string(b))
}

// Decode reads an Op from what Hand wrote: one of the commands, for a host ParseHost accepts, with
// no field unknown.
func Decode(s string) (*Op, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var o Op
	if err := dec.Decode(&o); err != nil {
		return nil, fmt.Errorf("the command for bulwarkd does not decode: %w", err)
	}
	switch o.Command {
	case Run, PS, Inspect, Logs, Exec, Stop, Kill, Remove, AuditVerify, AuditTail:
	default:
		return nil, fmt.Errorf("%q is no command for bulwarkd", o.Command)
	}
	if (o.Command == Run) != (o.Run != nil) || (o.Command == Exec) != (o.Exec != nil) {
		return nil, fmt.Errorf("the command for bulwarkd %q carries another command's request", o.Command)
	}
	switch o.Command {
	case Logs, Exec:
		if len(o.IDs) != 1 {
			return nil, fmt.Errorf("%s for bulwarkd: want one container, not %d", o.Command, len(o.IDs))
		}
	case Inspect, Stop, Kill, Remove:
		if len(o.IDs) == 0 {
			return nil, fmt.Errorf("%s for bulwarkd: no container", o.Command)
		}
	}
	if _, err := ParseHost(o.Host); err != nil {
		return nil, err
	}
	return &o, nil
}

// ParseHost is the daemon's socket path in host (unix:///path/to/bulwark.sock).
func ParseHost(host string) (string, error) {
	scheme, rest, ok := strings.Cut(host, "://")
	switch {
	case !ok:
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "host %q: want unix:///path/to/bulwark.sock", host)
	case scheme == "tcp" || scheme == "https":
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "host %q: bulwark talks to bulwarkd over its unix socket only (unix:///path)", host)
	case scheme != "unix":
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "host %q: unknown scheme %q (want unix:///path)", host, scheme)
	case !filepath.IsAbs(rest):
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "host %q: the socket path must be absolute", host)
	}
	return rest, nil
}
