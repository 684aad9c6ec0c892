// Package op is one command of the bulwark CLI for bulwarkd (--host, BULWARK_HOST) as bulwark
// parsed its command line: bulwark, which links no HTTP client, hands it to bulwark-admin beside
// it, whose client (package client) sends it. The commands are one closed set (Command); each
// carries only the fields its command line can set, and the flags it may carry are listed here
// (RunFlags, ExecFlags), for bulwark to refuse any other rather than drop it.
package op

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// HostEnv names the daemon when --host is not given.
const HostEnv = "BULWARK_HOST"

// Env carries an Op, as JSON, from bulwark to bulwark-admin's Command: the standard input, the
// output and the terminal are the caller's own, and the environment, unlike the command line,
// is readable only by the caller.
const Env = "_BULWARK_REMOTE_OP"

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

// Decode reads an Op from what Env held: one of the commands, for a host ParseHost accepts, with
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
