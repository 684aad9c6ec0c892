package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/internal/besideexe"
	"bulwark.dev/bulwark/internal/privilege"
	"bulwark.dev/bulwark/sandbox"
)

// newDelegatedCmd is a command bulwark-admin serves: its arguments, flags included, are
// bulwark-admin's to parse and check (--host, root). A caller who is not root is refused here
// first, as by every other command (bench only reads, and `trust status` may go through
// bulwarkd).
func newDelegatedCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short,
		DisableFlagParsing: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if use == "bench" || hostGiven() {
				return nil
			}
			return privilege.Require()
		},
		RunE: func(*cobra.Command, []string) error { return execAdmin(os.Args[1:]) },
	}
}

// hostGiven reports whether the command line or the environment names bulwarkd.
func hostGiven() bool {
	if os.Getenv(op.HostEnv) != "" {
		return true
	}
	return slices.ContainsFunc(os.Args[1:], func(a string) bool { return a == "--host" || strings.HasPrefix(a, "--host=") })
}

// execAdmin replaces this process with bulwark-admin beside it, with args (a delegated command:
// this one's) and env added to this process's environment. It must be a regular executable
// file of this binary's owner that no one else may write, and is executed through the
// descriptor that was checked.
func execAdmin(args []string, env ...string) error {
	fd, _, _, err := besideexe.Open(engine.AdminName)
	if err != nil {
		return err
	}
	env = append(env, engine.AdminBuildEnv+"="+sandbox.BuildID())
	// What is added replaces what the environment has of the same name (a process sees the
	// first of two).
	env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
	}), env...)
	// The descriptor is close-on-exec: the kernel has opened the file by then.
	err = unix.Exec("/proc/self/fd/"+strconv.Itoa(fd), append([]string{"bulwark"}, args...), env)
	unix.Close(fd)
	return fmt.Errorf("execute %s: %w", engine.AdminName, err)
}
