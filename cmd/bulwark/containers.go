package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/sandbox"
)

// tenantFlag adds --tenant to a container command: the tenant the caller acts for. Another
// tenant's containers are answered as missing and left out of ps.
func tenantFlag(c *cobra.Command, tenant *string) {
	c.Flags().StringVar(tenant, "tenant", sandbox.DefaultTenant, "tenant the caller acts for (only its containers are found)")
}

// as is the caller of a container command acting for tenant.
func as(tenant string) engine.Caller { return engine.Caller{Identity: caller(), Tenant: tenant} }

// withEngine opens the engine for a container command.
func withEngine(cmd *cobra.Command, fn func(*engine.Engine) error) error {
	e, err := openEngine(cmd, nil)
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

func newPsCmd() *cobra.Command {
	var all, quiet bool
	var tenant string
	c := &cobra.Command{
		Use:         "ps",
		Short:       "List containers (running ones; -a for all)",
		Args:        cobra.NoArgs,
		Annotations: remote("all", "quiet"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.PS, All: all, Quiet: quiet})
			}
			return withEngine(cmd, func(e *engine.Engine) error {
				list, err := e.List(as(tenant))
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				if !quiet {
					fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tTENANT")
				}
				for _, c := range list {
					if !all && c.Status != "running" && c.Status != "paused" && c.Status != "created" {
						continue
					}
					if quiet {
						fmt.Fprintln(tw, c.ID)
						continue
					}
					status := c.Status
					switch {
					case c.Exit != nil && c.Exit.Error != "" && c.Exit.Code == -1:
						status = "exited (status unknown)"
					case c.Exit != nil:
						status = fmt.Sprintf("exited (%d)", c.Exit.Code)
					}
					fmt.Fprintf(tw, "%s\t%s\t%q\t%s ago\t%s\t%s\n", c.ID, c.Image.Reference, strings.Join(c.Args, " "),
						time.Since(c.Created).Round(time.Second), status, c.Tenant)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show stopped containers too")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only ids")
	tenantFlag(c, &tenant)
	return c
}

func newInspectCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:         "inspect CONTAINER...",
		Short:       "Show containers' records and live state as JSON",
		Args:        cobra.MinimumNArgs(1),
		Annotations: remote(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Inspect, IDs: args})
			}
			return withEngine(cmd, func(e *engine.Engine) error {
				var out []*engine.Container
				for _, id := range args {
					c, err := e.Inspect(id, as(tenant))
					if err != nil {
						return err
					}
					out = append(out, c)
				}
				return clibase.PrintJSON(cmd.OutOrStdout(), out)
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newLogsCmd() *cobra.Command {
	var follow, timestamps bool
	var tenant string
	c := &cobra.Command{
		Use:         "logs CONTAINER",
		Short:       "Print a detached container's output (rotated files included)",
		Args:        cobra.ExactArgs(1),
		Annotations: remote("follow", "timestamps"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Logs, IDs: args, Follow: follow, Timestamps: timestamps})
			}
			return withEngine(cmd, func(e *engine.Engine) error {
				seen := 0
				print := func() error {
					n := 0
					return e.ReadLogs(args[0], as(tenant), func(le engine.LogEntry) error {
						n++
						if n <= seen {
							return nil
						}
						seen = n
						w := cmd.OutOrStdout()
						if le.Stream == "stderr" {
							w = cmd.ErrOrStderr()
						}
						if timestamps {
							fmt.Fprint(w, le.Time.Format(time.RFC3339Nano)+" ")
						}
						_, err := fmt.Fprint(w, le.Log)
						return err
					})
				}
				if err := print(); err != nil || !follow {
					return err
				}
				// Follow until the container stops (rotation while following may repeat or skip
				// lines that rotated between two polls).
				for {
					time.Sleep(200 * time.Millisecond)
					if err := print(); err != nil {
						return err
					}
					c, err := e.Inspect(args[0], as(tenant))
					if err != nil || (c.Status != "running" && c.Status != "paused" && c.Status != "created") {
						// A detached container's monitor records the exit once the log is
						// complete; wait for that (briefly) before the last read.
						for i := 0; i < 50 && err == nil && c.Detached && c.Exit == nil; i++ {
							time.Sleep(100 * time.Millisecond)
							c, err = e.Inspect(args[0], as(tenant))
						}
						return print()
					}
				}
			})
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the container stops")
	c.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "prefix each line with its time")
	tenantFlag(c, &tenant)
	return c
}

func newExecCmd() *cobra.Command {
	var (
		req         engine.ExecRequest
		interactive bool
		flags       engineFlags
	)
	c := &cobra.Command{
		Use:         "exec [flags] CONTAINER CMD [ARG...]",
		Short:       "Run a process in a running container (decided by policy, same confinement)",
		Args:        cobra.MinimumNArgs(2),
		Annotations: remote(op.ExecFlags...),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Identity = caller()
			req.Args = args[1:]
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Exec, IDs: args[:1], Exec: &req, Interactive: interactive})
			}
			collectAtLimit()
			e, err := openEngine(cmd, &flags)
			if err != nil {
				return err
			}
			defer e.Close()
			stdio := sandbox.IO{Stdout: os.Stdout, Stderr: os.Stderr}
			if interactive {
				stdio.Stdin = os.Stdin
			}
			code, err := e.Exec(context.Background(), args[0], req, stdio)
			if err != nil {
				return &clibase.ExitError{Code: engine.ExitStatus(err), Err: err}
			}
			return &clibase.ExitError{Code: code, Err: errSilent}
		},
	}
	c.Flags().SetInterspersed(false)
	flags.addPolicy(c)
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "keep stdin attached")
	c.Flags().StringArrayVarP(&req.Env, "env", "e", nil, "set an environment variable")
	c.Flags().StringVarP(&req.Workdir, "workdir", "w", "", "working directory")
	c.Flags().StringVarP(&req.User, "user", "u", "", "user[:group]")
	tenantFlag(c, &req.Tenant)
	return c
}

// eachContainer runs fn for every argument and prints the ids that succeeded, as docker does.
func eachContainer(cmd *cobra.Command, args []string, fn func(*engine.Engine, string) error) error {
	return withEngine(cmd, func(e *engine.Engine) error {
		var failed error
		for _, id := range args {
			if err := fn(e, id); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "bulwark: %s: %v\n", id, err)
				failed = err
				continue
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
		}
		if failed != nil {
			return &clibase.ExitError{Code: 1, Err: errSilent}
		}
		return nil
	})
}

func newStopCmd() *cobra.Command {
	var timeout int
	var tenant string
	c := &cobra.Command{
		Use:         "stop CONTAINER...",
		Short:       "SIGTERM, then SIGKILL after the timeout",
		Args:        cobra.MinimumNArgs(1),
		Annotations: remote("time"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Stop, IDs: args, Timeout: time.Duration(timeout) * time.Second})
			}
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error {
				return e.Stop(id, as(tenant), time.Duration(timeout)*time.Second)
			})
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	tenantFlag(c, &tenant)
	return c
}

func newKillCmd() *cobra.Command {
	var sig string
	var tenant string
	c := &cobra.Command{
		Use:         "kill CONTAINER...",
		Short:       "Send a signal (default SIGKILL) to every process of a container",
		Args:        cobra.MinimumNArgs(1),
		Annotations: remote("signal"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := parseSignal(sig)
			if err != nil {
				return err
			}
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Kill, IDs: args, Signal: fmt.Sprint(int(s))})
			}
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error {
				return e.Kill(id, as(tenant), s, s == syscall.SIGKILL)
			})
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal name or number")
	tenantFlag(c, &tenant)
	return c
}

func parseSignal(s string) (syscall.Signal, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func newRmCmd() *cobra.Command {
	var opts engine.RemoveOptions
	var tenant string
	c := &cobra.Command{
		Use:         "rm CONTAINER...",
		Short:       "Remove containers (running ones with --force)",
		Args:        cobra.MinimumNArgs(1),
		Annotations: remote("force", "volumes"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.Remove, IDs: args, Force: opts.Force, Volumes: opts.Volumes})
			}
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error {
				return e.Remove(id, as(tenant), opts)
			})
		},
	}
	c.Flags().BoolVarP(&opts.Force, "force", "f", false, "kill a running container first")
	c.Flags().BoolVarP(&opts.Volumes, "volumes", "v", false, "remove its anonymous volumes too (unless another container mounts one)")
	tenantFlag(c, &tenant)
	return c
}

func newPauseCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "pause CONTAINER...",
		Short: "Freeze every process of containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error { return e.Pause(id, as(tenant)) })
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newUnpauseCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "unpause CONTAINER...",
		Short: "Thaw paused containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error { return e.Unpause(id, as(tenant)) })
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newStatsCmd() *cobra.Command {
	var asJSON bool
	var tenant string
	c := &cobra.Command{
		Use:   "stats CONTAINER...",
		Short: "Resource usage from the containers' cgroups (one snapshot)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				all := map[string]*sandbox.Stats{}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				if !asJSON {
					fmt.Fprintln(tw, "CONTAINER ID\tMEM USAGE / LIMIT\tMEM PEAK\tPIDS\tCPU TIME\tOOM KILLS")
				}
				for _, id := range args {
					s, err := e.Stats(id, as(tenant))
					if err != nil {
						return fmt.Errorf("%s: %w", id, err)
					}
					all[id] = s
					if asJSON {
						continue
					}
					fmt.Fprintf(tw, "%s\t%s / %s\t%s\t%d\t%s\t%d\n", id, human(s.MemoryUsage), human(s.MemoryLimit),
						human(s.MemoryPeak), s.PidsCurrent, time.Duration(s.CPUUsageNs).Round(time.Millisecond), s.OOMKills)
				}
				if asJSON {
					return clibase.PrintJSON(cmd.OutOrStdout(), all)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	tenantFlag(c, &tenant)
	return c
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
