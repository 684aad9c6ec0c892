package runccli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/internal/specjson"
	"bulwark.dev/bulwark/sandbox"
)

type execOpts struct {
	processFile   string
	detach        bool
	pidFile       string
	consoleSocket string
	tty           bool
	cwd           string
	env           []string
	user          string
	addGids       []string
	caps          []string
	noNewPrivs    bool
	ignorePaused  bool
	preserveFDs   int
	apparmor      string
	processLabel  string
}

func newExecCmd(c *cliContext) *cobra.Command {
	o := &execOpts{}
	cmd := &cobra.Command{
		Use:   "exec [flags] <container-id> [command [args...]]",
		Short: "run a new process inside a running container, with exactly its confinement",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return c.exec(args[0], args[1:], o)
		},
	}
	// Everything after the id is the command and its own flags, as with runc.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&o.processFile, "process", "p", "", "path to a process.json (OCI process object)")
	f.BoolVarP(&o.detach, "detach", "d", false, "detach from the process")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the process id to")
	f.StringVar(&o.consoleSocket, "console-socket", "", "AF_UNIX socket that receives the pty master")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.StringVar(&o.cwd, "cwd", "", "current working directory in the container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	f.StringVarP(&o.user, "user", "u", "", "uid[:gid] inside the container")
	f.StringArrayVarP(&o.addGids, "additional-gids", "g", nil, "additional gid")
	f.StringArrayVarP(&o.caps, "cap", "c", nil, "request a capability (the floor decides)")
	f.BoolVar(&o.noNewPrivs, "no-new-privs", false, "accepted: no_new_privs is always set")
	f.BoolVar(&o.ignorePaused, "ignore-paused", false, "allow exec in a paused container")
	f.IntVar(&o.preserveFDs, "preserve-fds", 0, "refused unless 0: no host descriptor enters a container")
	f.StringVar(&o.apparmor, "apparmor", "", "refused: the MAC profile is the container's")
	f.StringVar(&o.processLabel, "process-label", "", "refused: the MAC label is the container's")
	return cmd
}

func (c *cliContext) exec(id string, args []string, o *execOpts) error {
	if o.preserveFDs != 0 {
		return errors.New("--preserve-fds is refused: no host file descriptor enters a container")
	}
	if o.apparmor != "" || o.processLabel != "" {
		// An exec'd process gets exactly the container's confinement; a caller cannot pick another.
		return errors.New("--apparmor/--process-label are refused: exec uses the container's MAC confinement")
	}
	// Signals are caught before the process exists (beside the decision: see catchSignals).
	sigc := make(chan os.Signal, 64)
	var caught <-chan error
	if !o.detach {
		caught = catchSignals(sigc)
	}
	ct, err := c.load(id)
	if err != nil {
		return err
	}
	st, err := ct.State()
	if err != nil {
		return fmt.Errorf("state of container %s: %w", id, err)
	}
	// As runc: a created container can be exec'd into (its init still waits for start).
	switch sandbox.Status(st.Status) {
	case sandbox.StatusRunning, sandbox.StatusCreated:
	case sandbox.StatusPaused:
		if !o.ignorePaused {
			return fmt.Errorf("cannot exec in paused container %s (use --ignore-paused)", id)
		}
	default:
		return fmt.Errorf("cannot exec in container %s: it is %s", id, st.Status)
	}
	p, err := buildProcess(st.Bundle, args, o)
	if err != nil {
		return err
	}
	if err := c.decideExec(id, st, p); err != nil {
		return err
	}

	var stdio sandbox.IO
	var proxy *console.Proxy
	switch {
	case p.Terminal && o.consoleSocket != "":
		stdio.ConsoleSocket = o.consoleSocket
	case p.Terminal && o.detach:
		return errors.New("cannot allocate tty if bulwark-runc will detach without setting console socket")
	case p.Terminal:
		if proxy, err = console.NewProxy(true); err != nil {
			return err
		}
		defer proxy.Close()
		stdio.ConsoleSocket = proxy.Path()
	case o.consoleSocket != "":
		return errors.New("cannot use console socket if bulwark-runc will not detach or allocate tty")
	default:
		stdio = sandbox.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	}

	// The process runs as soon as it exists: every signal is caught first.
	if err := waitCaught(caught); err != nil {
		return err
	}
	proc, err := ct.Exec(p, stdio)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	if proxy != nil {
		if err := proxy.Attach(); err != nil {
			_ = syscall.Kill(proc.Pid, syscall.SIGKILL)
			return err
		}
	}
	if err := writePidFile(o.pidFile, proc.Pid); err != nil {
		_ = syscall.Kill(proc.Pid, syscall.SIGKILL)
		return err
	}
	if o.detach {
		return nil
	}
	done := make(chan struct{})
	go forwardSignals(sigc, done, proxy, func(sig syscall.Signal) error { return syscall.Kill(proc.Pid, sig) })
	c.log().flush() // the process may run for long: its debug lines so far are due
	status, err := proc.Wait()
	close(done)
	if err != nil {
		return fmt.Errorf("wait for exec'd process %d: %w", proc.Pid, err)
	}
	return &exitError{code: status}
}

// buildProcess returns the process to exec: --process as given, or the container's own process
// from its bundle with runc's overrides (args, env appended, cwd, tty, user, caps). Nothing here can
// lower the floor; the sandbox applies the same confinement to it as to init.
func buildProcess(bundle string, args []string, o *execOpts) (*specs.Process, error) {
	if o.processFile != "" {
		data, err := os.ReadFile(o.processFile)
		if err != nil {
			return nil, fmt.Errorf("read process file: %w", err)
		}
		// What encoding/json decodes, without its reflection in the common case (specjson).
		p, err := specjson.DecodeProcess(data)
		if err != nil {
			return nil, fmt.Errorf("parse process file %s: %w", o.processFile, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("process file %s: args must not be empty", o.processFile)
		}
		return p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec: a command is required (or --process)")
	}
	_, spec, err := loadBundle(bundle)
	if err != nil {
		return nil, fmt.Errorf("container bundle %s: %w", filepath.Clean(bundle), err)
	}
	p := spec.Process
	p.Args = args
	p.Terminal = o.tty
	p.Env = append(p.Env, o.env...)
	if o.cwd != "" {
		p.Cwd = o.cwd
	}
	if o.user != "" {
		if err := parseUser(o.user, &p.User); err != nil {
			return nil, err
		}
	}
	for _, g := range o.addGids {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid additional gid %q", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if len(o.caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range o.caps {
			c = strings.ToUpper(c)
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, c)
			p.Capabilities.Effective = append(p.Capabilities.Effective, c)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, c)
		}
	}
	return p, nil
}

// parseUser parses runc's --user: uid[:gid], numeric (names would need the container's /etc/passwd,
// which the runtime must not read from the host side).
func parseUser(s string, u *specs.User) error {
	uidStr, gidStr, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil {
		return fmt.Errorf("invalid --user %q: want uid[:gid]", s)
	}
	u.UID = uint32(uid)
	if hasGid {
		gid, err := strconv.ParseUint(gidStr, 10, 32)
		if err != nil {
			return fmt.Errorf("invalid --user %q: want uid[:gid]", s)
		}
		u.GID = uint32(gid)
	}
	return nil
}
