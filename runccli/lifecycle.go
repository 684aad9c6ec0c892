package runccli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/engine/runcgate"
	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/sandbox"
)

// createOpts are the flags shared by create and run.
type createOpts struct {
	bundle        string
	pidFile       string
	consoleSocket string
	noPivot       bool
	noNewKeyring  bool
	preserveFDs   int
}

func (o *createOpts) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.bundle, "bundle", "b", "", "path to the root of the bundle directory (default: current directory)")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the container's init pid to")
	f.StringVar(&o.consoleSocket, "console-socket", "",
		"AF_UNIX socket that receives the pty master when process.terminal is true")
	f.BoolVar(&o.noPivot, "no-pivot", false, "refused: the floor always uses pivot_root")
	f.BoolVar(&o.noNewKeyring, "no-new-keyring", false,
		"accepted: the keyring syscalls are blocked by the floor's seccomp profile in every container")
	f.IntVar(&o.preserveFDs, "preserve-fds", 0, "refused unless 0: no host descriptor enters a container")
}

// create builds the container whose init waits for start. detach says whether we return before the
// process ends (create, run -d), which decides how a terminal may be served. caught, when not
// nil, yields once the caller catches every signal (catchSignals): the container is created only
// then.
func (c *cliContext) create(id string, o *createOpts, detach bool, caught <-chan error) (*sandbox.Container, *console.Proxy, error) {
	if err := validateID(id); err != nil {
		return nil, nil, err
	}
	if o.noPivot {
		// runc's --no-pivot falls back to chroot, which a process with CAP_SYS_CHROOT can escape.
		return nil, nil, errors.New("--no-pivot is refused: the floor always pivot_roots into a read-only rootfs")
	}
	if o.preserveFDs != 0 {
		// CVE-2024-21626 lesson: no host file descriptor may reach the container.
		return nil, nil, errors.New("--preserve-fds is refused: no host file descriptor enters a container")
	}
	growStack()
	pol := c.beginPolicy()
	bundle, spec, err := loadBundle(o.bundle)
	if err != nil {
		return nil, nil, err
	}
	c.log().lap("cli:bundle")
	rt, err := c.runtime()
	if err != nil {
		return nil, nil, err
	}
	c.log().lap("cli:runtime")
	// Policy decides before anything is created; Create gets the spec it decided on.
	d, durable, err := c.decide(pol, rt, c.g.tenant, id, bundle, spec, nil, "")
	if err != nil {
		return nil, nil, err
	}
	spec, binds := d.Spec, d.Binds
	defer binds.Close()
	defer d.Hooks.Close()
	defer durable() //nolint:errcheck // error paths too leave the decision durable; success checks it below
	stdio := sandbox.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	var proxy *console.Proxy
	switch {
	case spec.Process.Terminal && o.consoleSocket != "":
		stdio = sandbox.IO{ConsoleSocket: o.consoleSocket}
	case spec.Process.Terminal && detach:
		return nil, nil, errors.New("cannot allocate tty if bulwark-runc will detach without setting console socket")
	case spec.Process.Terminal:
		if proxy, err = console.NewProxy(true); err != nil {
			return nil, nil, err
		}
		stdio = sandbox.IO{ConsoleSocket: proxy.Path()}
	case o.consoleSocket != "":
		return nil, nil, errors.New("cannot use console socket if bulwark-runc will not detach or allocate tty")
	}
	if caught != nil {
		if err := <-caught; err != nil {
			return nil, nil, closeProxy(proxy, err)
		}
		c.log().lap("cli:signal")
	}
	ct, err := rt.CreateFloored(context.Background(), id, bundle, d.Floor, stdio)
	if err != nil {
		return nil, nil, closeProxy(proxy, errors.Join(fmt.Errorf("create container %s: %w", id, err), durable()))
	}
	// The id is this container's now: its hook record replaces any a crashed create left.
	if err := runcgate.SaveHooks(c.hookRecord(id), d.Hooks); err != nil {
		return nil, nil, closeProxy(proxy, errors.Join(fmt.Errorf("create %s: %w", id, err), ct.Delete(true), durable()))
	}
	c.log().lap("cli:hook-record")
	if err := durable(); err != nil {
		return nil, nil, c.abandon(ct, closeProxy(proxy, err))
	}
	// Hooks run once the decision that allowed them is durable.
	if err := c.createHooks(ct, d.Hooks); err != nil {
		return nil, nil, c.abandon(ct, closeProxy(proxy, err))
	}
	if proxy != nil {
		if err := proxy.Attach(); err != nil {
			return nil, nil, c.abandon(ct, closeProxy(proxy, err))
		}
	}
	if o.pidFile != "" {
		st, err := ct.State()
		if err == nil {
			err = writePidFile(o.pidFile, st.Pid)
		}
		if err != nil {
			return nil, nil, c.abandon(ct, closeProxy(proxy, err))
		}
	}
	c.log().lap("cli:hooks+pid")
	return ct, proxy, nil
}

func closeProxy(p *console.Proxy, err error) error {
	if p != nil {
		return errors.Join(err, p.Close())
	}
	return err
}

// abandon deletes a container whose creation could not be completed, so a failed command leaves
// nothing behind, and returns the original error.
func (c *cliContext) abandon(ct *sandbox.Container, err error) error {
	if derr := c.deleteContainer(ct, true); derr != nil {
		return errors.Join(err, fmt.Errorf("clean up container %s: %w", ct.ID(), derr))
	}
	return err
}

func newCreateCmd(c *cliContext) *cobra.Command {
	o := &createOpts{}
	cmd := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "create a container (its init waits for start)",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			_, _, err := c.create(args[0], o, true, nil)
			return err
		},
	}
	o.register(cmd)
	return cmd
}

func newStartCmd(c *cliContext) *cobra.Command {
	return &cobra.Command{
		Use:   "start <container-id>",
		Short: "run the user process of a created container",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			ct, err := c.load(args[0])
			if err != nil {
				return err
			}
			return c.start(ct)
		},
	}
}

func newRunCmd(c *cliContext) *cobra.Command {
	o := &createOpts{}
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "create and start a container; in the foreground, exit with its status",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			return c.run(args[0], o, detach, keep)
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

func (c *cliContext) run(id string, o *createOpts, detach, keep bool) error {
	// Catch signals before the container starts so none is lost between start and wait.
	sigc := make(chan os.Signal, 64)
	var caught <-chan error
	if !detach {
		caught = catchSignals(sigc)
	}
	ct, proxy, err := c.create(id, o, detach, caught)
	if err != nil {
		return err
	}
	if err := c.start(ct); err != nil {
		return c.abandon(ct, closeProxy(proxy, err))
	}
	if detach {
		return nil
	}
	done := make(chan struct{})
	go forwardSignals(sigc, done, proxy, func(sig syscall.Signal) error { return ct.Signal(sig, false) })
	c.log().flush() // the container may run for long: its debug lines so far are due
	status, werr := ct.Wait()
	close(done)
	err = closeProxy(proxy, nil)
	if werr != nil {
		err = errors.Join(fmt.Errorf("wait for container %s: %w", id, werr), err)
	}
	if !keep {
		if derr := c.deleteContainer(ct, true); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete container %s: %w", id, derr))
		}
	}
	if err != nil {
		return err
	}
	return &exitError{code: status}
}

func newDeleteCmd(c *cliContext) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] <container-id>",
		Short: "delete a container and everything it holds (cgroups, mounts, id range, state)",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			ct, err := c.load(args[0])
			if err != nil {
				if force && errors.Is(err, sandbox.ErrNotExist) {
					// runc: deleting a missing container with --force succeeds.
					return nil
				}
				return err
			}
			if err := c.deleteContainer(ct, force); err != nil {
				if errors.Is(err, sandbox.ErrInvalidState) {
					return fmt.Errorf("cannot delete container %s that is not stopped (use --force): %w", args[0], err)
				}
				return fmt.Errorf("delete container %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container (SIGKILL) if it is still running")
	return cmd
}

// stackFrame is growStack's frame: above the 16 KB the goroutine's stack would double to first
// whatever is below it, and small enough that the stack doubles once, to 32 KB.
const stackFrame = 16 << 10

// stackIndex is 0: a variable, so that growStack's frame is not optimized away.
var stackIndex int

// growStack grows the goroutine's stack to the 32 KB that a create reaches anyway, while it is
// still a few frames deep. Left to itself the main goroutine's stack started at 8 KB and grew
// twice on the create's path, each time copying the stack at its depth to a new one and adjusting
// every frame on it: to 16 KB in the policy step (gate.Decide's frame) and to 32 KB in the
// sandbox's create (the id map's JSON decoding). Here it is copied once, a few frames deep, and
// the 16 KB stack is never made.
//
//go:noinline
func growStack() byte {
	var frame [stackFrame]byte
	frame[stackIndex] = 1
	return frame[stackIndex]
}
