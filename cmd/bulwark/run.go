package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/internal/console"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/internal/sigcatch"
	"bulwark.dev/bulwark/sandbox"
)

// engineFlags are the run-time options shared by run and exec.
type engineFlags struct {
	policyDir, policyBundle, policyKey string
	allowNoMAC                         bool
	unpack                             image.UnpackOptions // run only: unpackLimits
	steps                              *engine.StepLog     // run only: --steps-log
}

func (f *engineFlags) add(c *cobra.Command) {
	f.addPolicy(c)
	c.Flags().BoolVar(&f.allowNoMAC, "allow-no-mac", false, "run on a host with no MAC layer at all (audited exception)")
}

// addPolicy adds the flags that select the policy (exec must name the one its container ran under).
func (f *engineFlags) addPolicy(c *cobra.Command) {
	c.Flags().StringVar(&f.policyDir, "policy-dir", "", "policy (or tenant data) directory instead of the embedded default")
	c.Flags().StringVar(&f.policyBundle, "policy-bundle", "", "signed OPA bundle (tar.gz) to decide with")
	c.Flags().StringVar(&f.policyKey, "policy-key", "", "PEM public key the bundle must be signed with")
}

func openEngine(cmd *cobra.Command, f *engineFlags) (*engine.Engine, error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return nil, err
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	run, err := cmd.Flags().GetString("run-root")
	if err != nil {
		return nil, err
	}
	if run == "" {
		run = runroot.Of(root)
	} else if run, err = filepath.Abs(run); err != nil {
		return nil, err
	}
	// The supervisor runs from "/": it is given the absolute state and run roots.
	cfg := engine.Config{Root: root, RunRoot: run, Resolver: []string{"/proc/self/exe", "--root", root, "--run-root", run, resolverCmdName},
		Monitor: []string{"/proc/self/exe", "--root", root, "--run-root", run, monitorCmdName}}
	if f != nil {
		cfg.PolicyDir, cfg.PolicyBundle, cfg.AllowNoMAC, cfg.Unpack = f.policyDir, f.policyBundle, f.allowNoMAC, f.unpack
		if f.steps != nil {
			cfg.Steps = f.steps
		}
		if f.policyKey != "" {
			// bulwark-policy reads it (engine.HelperPolicies), from any directory.
			if cfg.PolicyKeyFile, err = filepath.Abs(f.policyKey); err != nil {
				return nil, fmt.Errorf("policy key: %w", err)
			}
		}
	}
	return engine.Open(cfg)
}

func caller() engine.Identity {
	return engine.Identity{UID: os.Getuid(), GID: os.Getgid()}
}

func newRunCmd() *cobra.Command {
	var (
		req         engine.Request
		ef          engineFlags
		limits      unpackLimits
		memory      string
		secOpts     []string
		logOpts     []string
		entrypoint  string
		readOnly    bool
		interactive bool
		dryRun      bool
		stepsLog    string
	)
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [CMD...]",
		Short: "Verify, decide and run an image in a sandbox",
		Long: `Run resolves IMAGE through TUF, verifies every blob, builds the effective spec (image
config + flags + the floor), asks policy, and runs the workload under the floor.
Exit status: the workload's; 125 when Bulwark refuses or fails; 126 when the command cannot be
invoked; 127 when it is not found.`,
		Args:        cobra.MinimumNArgs(1),
		Annotations: remote(op.RunFlags...),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Image, req.Args, req.DryRun = args[0], args[1:], dryRun
			req.Identity = caller()
			if entrypoint != "" {
				req.Entrypoint = []string{entrypoint}
			}
			if memory != "" {
				n, err := parseBytes(memory)
				if err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
				req.Memory = n
			}
			if err := securityOpts(&req, secOpts); err != nil {
				return err
			}
			if err := logOptions(&req, logOpts); err != nil {
				return err
			}
			if req.Detach && interactive && !req.TTY {
				return errors.New("-i cannot be combined with -d (with -d -t, 'bulwark attach' sends input)")
			}
			if req.TTY && !req.Detach {
				// The workload's terminal starts at the caller's size.
				if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
					req.TTYRows, req.TTYCols = ws.Row, ws.Col
				}
			}
			req.WritableRoot = !readOnly
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Run, Run: &req, DryRun: dryRun})
			}
			unpack, err := limits.options()
			if err != nil {
				return err
			}
			ef.unpack = unpack
			if stepsLog != "" {
				ef.steps = engine.NewStepLog(mainAt)
			}
			collectAtLimit()
			e, err := openEngine(cmd, &ef)
			if err != nil {
				return err
			}
			defer e.Close()
			err = runRequest(cmd, e, &req, interactive, dryRun)
			if ef.steps != nil {
				if werr := ef.steps.WriteFile(stepsLog); werr != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "bulwark:", werr)
				}
			}
			return err
		},
	}
	c.Flags().SetInterspersed(false) // flags after IMAGE belong to the command
	fl := c.Flags()
	fl.StringVar(&req.Name, "name", "", "container name (default: a random id)")
	fl.BoolVar(&req.Remove, "rm", false, "remove the container when it exits")
	fl.BoolVarP(&req.Detach, "detach", "d", false, "run in the background and print the container id")
	fl.StringVar(&req.Restart, "restart", "no", "with -d: no, on-failure[:N] (at most N restarts), always or unless-stopped (the supervisor restarts it, with back-off; not after stop)")
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep stdin attached")
	fl.BoolVarP(&req.TTY, "tty", "t", false, "give the workload a terminal (raw mode of yours, resized with it); with -d, reach it with 'bulwark attach'")
	fl.StringArrayVarP(&req.Env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass the caller's)")
	fl.StringVarP(&req.Workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&req.User, "user", "u", "", "user[:group] (names or ids, looked up in the image)")
	fl.StringVar(&req.Tenant, "tenant", "default", "tenant the container runs for")
	fl.StringArrayVar(&req.CapAdd, "cap-add", nil, "add a capability to Docker's default set (policy decides; forbidden ones are refused)")
	fl.StringArrayVar(&req.CapDrop, "cap-drop", nil, "drop a capability from Docker's default set (ALL: start from none)")
	fl.StringVarP(&memory, "memory", "m", "", "memory limit (e.g. 64m, 1g)")
	fl.Int64Var(&req.PidsLimit, "pids-limit", 0, "pids limit")
	fl.Float64Var(&req.CPUs, "cpus", 0, "CPU limit (e.g. 0.5)")
	fl.StringArrayVar(&req.Tmpfs, "tmpfs", nil, "mount a tmpfs (DST[:OPTIONS])")
	fl.StringArrayVarP(&req.Volumes, "volume", "v", nil, "bind mount /HOST:DST[:ro|rw] (read-only unless :rw, which policy must allow), or the tenant's volume NAME:DST[:ro|rw][,nocopy][,exec] (writable unless :ro; created and filled from the image if new)")
	fl.StringArrayVar(&req.Mounts, "mount", nil, "docker's mount syntax: type=volume|bind|tmpfs,source=…,destination=…[,readonly][,volume-nocopy][,bind-recursive=disabled][,tmpfs-size=…][,tmpfs-mode=…][,exec] (a bind is writable unless readonly, as in docker: policy decides)")
	fl.StringArrayVar(&secOpts, "security-opt", nil, "seccomp=FILE (stacked on the floor's profile), seccomp=unconfined, no-new-privileges")
	fl.BoolVar(&req.Privileged, "privileged", false, "accepted so that policy can say no: privileged sandboxes are never run")
	fl.BoolVar(&readOnly, "read-only", true, "the root filesystem is read-only; false asks for a writable one, which the tenant's policy must grant (writable_root_size)")
	fl.StringVar(&req.Network, "network", "", "none (the default without -p: private namespace, loopback only), NAME (one of the tenant's networks: bulwark network create), or bridge (the tenant's default network, the default with -p); host is refused")
	fl.StringVar(&req.NetworkRate, "network-rate", "", "limit the container's network traffic: RATE each way, or ingress=RATE,egress=RATE (bits/s: 500kbit, 10mbit, 1gbit); policy refuses a rate above the tenant's max_network_rate, which an unlimited direction gets")
	fl.StringArrayVarP(&req.Publish, "publish", "p", nil, "publish a container port on the host, [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp] (IP default 127.0.0.1; policy decides which addresses and ports; without --network, the tenant's default network)")
	fl.BoolVarP(&req.PublishAll, "publish-all", "P", false, "publish every port the image exposes on a free host port of 127.0.0.1 (the kernel's ephemeral range; policy decides)")
	fl.StringArrayVar(&req.Egress, "egress", nil, "what the container may connect to through its network: none, network (its network's containers), any, or allowlist entries [tcp:|udp:]CIDR[:PORT[-PORT]] (repeatable); default the tenant's, policy decides")
	fl.StringVar(&req.Hostname, "hostname", "", "container hostname (default: the container id)")
	fl.StringArrayVar(&req.Ulimits, "ulimit", nil, "resource limit NAME=SOFT[:HARD] (e.g. nofile=1024:2048)")
	fl.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	fl.StringArrayVar(&logOpts, "log-opt", nil, "detached log rotation: max-size=SIZE (default 10m), max-file=N (rotated files kept, default 3)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the decision and the effective, floor-raised config; run nothing")
	fl.StringVar(&stepsLog, "steps-log", "", "write how long each step of the run took to FILE (engine/steps.go names them; for benchmarks)")
	ef.add(c)
	limits.add(c)
	return c
}

func securityOpts(req *engine.Request, opts []string) error {
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if k2, v2, ok := strings.Cut(o, ":"); !strings.Contains(o, "=") && ok {
			k, v = k2, v2
		}
		switch k {
		case "seccomp":
			if v == "" {
				return fmt.Errorf("--security-opt %q: seccomp needs a profile file or unconfined", o)
			}
			req.Seccomp = v
		case "no-new-privileges":
			if v == "false" {
				return errors.New("--security-opt no-new-privileges=false: no_new_privs is part of the floor and cannot be turned off")
			}
		default:
			return fmt.Errorf("--security-opt %q is not supported (seccomp=FILE|unconfined, no-new-privileges)", o)
		}
	}
	return nil
}

func logOptions(req *engine.Request, opts []string) error {
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "max-size":
			n, err := parseBytes(v)
			if err != nil {
				return fmt.Errorf("--log-opt %s: %w", o, err)
			}
			req.LogMaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("--log-opt %s: want a positive number of files", o)
			}
			req.LogMaxFiles = n
		default:
			return fmt.Errorf("--log-opt %q is not supported (max-size, max-file)", o)
		}
	}
	return nil
}

// parseBytes reads docker's size notation: a number with an optional b, k, m or g suffix
// (binary units).
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "kb"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "mb"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "gb"):
		mult = 1 << 30
	}
	n, err := strconv.ParseInt(strings.TrimRight(s, "kmgb"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func runRequest(cmd *cobra.Command, e *engine.Engine, req *engine.Request, interactive, dryRun bool) error {
	ctx := context.Background()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	plan, err := e.Prepare(ctx, req)
	if dryRun && plan != nil {
		fmt.Fprint(errOut, plan.Summary())
		b, jerr := engine.PlanJSON(plan)
		if jerr != nil {
			return jerr
		}
		fmt.Fprintf(out, "%s\n", b)
	}
	if err != nil {
		return &clibase.ExitError{Code: engine.ExitStatus(err), Err: err}
	}
	if dryRun {
		return nil
	}
	if req.Detach {
		return startMonitor(cmd, plan, out)
	}
	stdio := sandbox.IO{Stdout: os.Stdout, Stderr: os.Stderr}
	if interactive {
		stdio.Stdin = os.Stdin
	}
	var proxy *console.Proxy
	if req.TTY {
		// The workload's stdio is its pty; ours is connected to the master.
		if proxy, err = console.NewProxy(interactive); err != nil {
			return err
		}
		defer proxy.Close()
		stdio = sandbox.IO{ConsoleSocket: proxy.Path()}
	}
	// Signals reach the workload, as with docker run's sig-proxy, once the container is about to
	// be created: a signal before then has its default effect, and one caught before the
	// container exists ends the run there (signalledEarly). A C handler catches them
	// (internal/sigcatch; os/signal's round trip to the Go runtime's signal-mask thread for each
	// was 0.4-1.5 ms beside the verification, and a run waited up to 0.4 ms for it). Never undone:
	// the process ends after the run.
	sigs := make(chan os.Signal, 8)
	if err := sigcatch.Catch(sigs, relayedSignals); err != nil {
		plan.Close()
		return err
	}
	if err := signalledEarly(sigs); err != nil {
		plan.Close()
		return err
	}
	r, err := e.Start(ctx, plan, stdio)
	if err != nil {
		return &clibase.ExitError{Code: engine.ExitStatus(err), Err: err}
	}
	if proxy != nil {
		if err := proxy.Attach(); err != nil {
			r.Signal(syscall.SIGKILL)
			r.Wait()
			return err
		}
	}
	go func() {
		// As docker run: signals are proxied; the third interrupt kills the container (a PID 1
		// without a handler ignores SIGINT and SIGTERM).
		interrupts := 0
		for s := range sigs {
			if s == syscall.SIGWINCH {
				if proxy != nil {
					proxy.Resize()
				}
				continue
			}
			if s == syscall.SIGINT || s == syscall.SIGTERM {
				if interrupts++; interrupts >= 3 {
					fmt.Fprintln(errOut, "bulwark: third interrupt: killing the container")
					r.Kill()
					continue
				}
			}
			r.Signal(s.(syscall.Signal))
		}
	}()
	info, err := r.Wait()
	if proxy != nil {
		proxy.Close() // the last output, and the caller's terminal mode back
	}
	if err != nil {
		fmt.Fprintln(errOut, "bulwark:", err)
	}
	if info.Code == 0 && err != nil {
		return &clibase.ExitError{Code: 125, Err: err}
	}
	return &clibase.ExitError{Code: info.Code, Err: errSilent}
}

// relayedSignals are the signals a foreground run relays to its workload (SIGWINCH: the size of
// its terminal).
var relayedSignals = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// signalledEarly returns the exit a signal caught before the container exists means (what its
// default action would have made of the command: 128+n), nil if none came; a SIGWINCH is nothing
// to act on yet.
func signalledEarly(sigs chan os.Signal) error {
	for {
		select {
		case s := <-sigs:
			if s != syscall.SIGWINCH {
				n := int(s.(syscall.Signal))
				return &clibase.ExitError{Code: 128 + n, Err: fmt.Errorf("%v before the container was created: not run", s)}
			}
		default:
			return nil
		}
	}
}

// gcMemoryLimit is the heap at which a run or exec collects (collectAtLimit).
const gcMemoryLimit = 128 << 20

// collectAtLimit has the garbage collector run only when the process's memory nears
// gcMemoryLimit, as bulwark-runc does: a run allocates a few MB (the policy's cold path about
// 30 MB, garbage once it has decided) and then is idle while its workload runs, and the
// collection the default pacing starts at 4 MB landed in the middle of the container's start
// (GODEBUG=gctrace=1: one cycle, 7.8 ms of stop-the-world under load).
func collectAtLimit() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcMemoryLimit)
}

// errSilent carries a workload's exit status without printing anything.
var errSilent = errors.New("")

// startMonitor hands the plan to the state root's supervisor (engine.SpawnMonitor, which starts
// one when none runs) and prints the container id once the workload runs.
func startMonitor(cmd *cobra.Command, plan *engine.Plan, out io.Writer) error {
	root, _ := cmd.Flags().GetString("root")
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	monitor := []string{"/proc/self/exe", "--root", root}
	// The supervisor keeps the container's sandbox state where this command's others look for it.
	if run, _ := cmd.Flags().GetString("run-root"); run != "" {
		if run, err = filepath.Abs(run); err != nil {
			return err
		}
		monitor = append(monitor, "--run-root", run)
	}
	id, err := engine.SpawnMonitor(plan, append(monitor, monitorCmdName))
	var me *engine.MonitorError
	if errors.As(err, &me) {
		return &clibase.ExitError{Code: me.Code, Err: err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, id)
	return nil
}

const monitorCmdName = "__monitor"

// newMonitorCmd is the hidden command the supervisor's processes run as (engine.ServeMonitor).
func newMonitorCmd() *cobra.Command {
	return &cobra.Command{
		Use:    monitorCmdName,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return engine.ServeMonitor(func() (*engine.Engine, error) { return openEngine(cmd, nil) }, os.Stdin)
		},
	}
}
