package runccli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/sandbox"
)

func newStateCmd(c *cliContext) *cobra.Command {
	return &cobra.Command{
		Use:   "state <container-id>",
		Short: "print the container's OCI state (plus Bulwark's raises and id range) as JSON",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			ct, err := c.load(args[0])
			if err != nil {
				return err
			}
			st, err := ct.State()
			if err != nil {
				return fmt.Errorf("state of container %s: %w", args[0], err)
			}
			return printJSON(st, "  ")
		},
	}
}

func printJSON(v any, indent string) error {
	b, err := json.MarshalIndent(v, "", indent)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

func newKillCmd(c *cliContext) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "send a signal (default SIGTERM) to the container's init, or to all its processes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				s, err := parseSignal(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			ct, err := c.load(args[0])
			if err != nil {
				return err
			}
			if err := ct.Signal(sig, all); err != nil {
				return fmt.Errorf("kill container %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to all processes of the container")
	return cmd
}

func newPauseCmd(c *cliContext) *cobra.Command {
	return &cobra.Command{
		Use:   "pause <container-id>",
		Short: "freeze every process of the container",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			ct, err := c.load(args[0])
			if err != nil {
				return err
			}
			if err := ct.Pause(); err != nil {
				return fmt.Errorf("pause container %s: %w", args[0], err)
			}
			return nil
		},
	}
}

func newResumeCmd(c *cliContext) *cobra.Command {
	return &cobra.Command{
		Use:   "resume <container-id>",
		Short: "thaw a paused container",
		Args:  idArg,
		RunE: func(_ *cobra.Command, args []string) error {
			ct, err := c.load(args[0])
			if err != nil {
				return err
			}
			if err := ct.Resume(); err != nil {
				return fmt.Errorf("resume container %s: %w", args[0], err)
			}
			return nil
		},
	}
}

func newListCmd(c *cliContext) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "list the containers under --root",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			rt, err := c.runtime()
			if err != nil {
				return err
			}
			states, err := rt.List()
			if err != nil {
				return fmt.Errorf("list containers: %w", err)
			}
			if quiet {
				for _, st := range states {
					fmt.Println(st.ID)
				}
				return nil
			}
			switch format {
			case "json":
				if states == nil {
					states = []sandbox.State{}
				}
				return printJSON(states, "")
			case "table":
				return printListTable(states)
			default:
				return fmt.Errorf("invalid format %q: want table or json", format)
			}
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "display only container ids")
	return cmd
}

// printListTable prints runc's list columns; OWNER is the state root's owner, as for runc.
func printListTable(states []sandbox.State) error {
	w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
	fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\tTENANT\n")
	owner := "root"
	if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
		owner = u.Username
	}
	for _, st := range states {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", st.ID, st.Pid, st.Status, st.Bundle,
			st.Created.Format(time.RFC3339Nano), owner, st.Tenant)
	}
	return w.Flush()
}

func newPsCmd(c *cliContext) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "list the processes of a container (host pids)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ct, err := c.load(args[0])
			if err != nil {
				return err
			}
			pids, err := ct.Processes()
			if err != nil {
				return fmt.Errorf("processes of container %s: %w", args[0], err)
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return printJSON(pids, "")
			case "table":
				return psTable(pids, args[1:])
			default:
				return fmt.Errorf("invalid format %q: want table or json", format)
			}
		},
	}
	// ps options after the id belong to ps(1), as in runc.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// psTable runs ps(1) (default -ef) and keeps the header and the container's lines, as runc does.
func psTable(pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("run ps %s: %w", strings.Join(psArgs, " "), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return fmt.Errorf("ps printed nothing")
	}
	header := sc.Text()
	col := slices.Index(strings.Fields(header), "PID")
	if col < 0 {
		return fmt.Errorf("ps output has no PID column: %q", header)
	}
	fmt.Println(header)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= col {
			continue
		}
		pid, err := strconv.Atoi(fields[col])
		if err == nil && slices.Contains(pids, pid) {
			fmt.Println(sc.Text())
		}
	}
	return sc.Err()
}
