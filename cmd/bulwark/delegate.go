package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/client"
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
		RunE: func(*cobra.Command, []string) error { return execAdmin() },
	}
}

// hostGiven reports whether the command line or the environment names bulwarkd.
func hostGiven() bool {
	if os.Getenv(client.HostEnv) != "" {
		return true
	}
	return slices.ContainsFunc(os.Args[1:], func(a string) bool { return a == "--host" || strings.HasPrefix(a, "--host=") })
}

// execAdmin replaces this process with bulwark-admin beside it, with the same arguments. It
// must be a regular executable file of this binary's owner that no one else may write, and is
// executed through the descriptor that was checked.
func execAdmin() error {
	fd, _, _, err := besideexe.Open(engine.AdminName)
	if err != nil {
		return err
	}
	env := append(os.Environ(), engine.AdminBuildEnv+"="+sandbox.BuildID())
	// The descriptor is close-on-exec: the kernel has opened the file by then.
	err = unix.Exec("/proc/self/fd/"+strconv.Itoa(fd), append([]string{"bulwark"}, os.Args[1:]...), env)
	unix.Close(fd)
	return fmt.Errorf("execute %s: %w", engine.AdminName, err)
}
