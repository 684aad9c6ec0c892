package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/besideexe"
	"bulwark.dev/bulwark/sandbox"
)

// AdminName is the binary beside bulwark that links what the bulwark CLI's run path does not:
// OPA for `policy` and `bench`, go-tuf and sigstore for `trust` and for a full TUF refresh
// (TrustResolveCommand), go-containerregistry for `image pull` and `image push`, libcni for the
// CNI plugins (CNICommand).
const AdminName = "bulwark-admin"

// AdminBuildEnv tells bulwark-admin the build of the binary that executed it: it serves only its
// own build (their state and arguments are one build's).
const AdminBuildEnv = "_BULWARK_ADMIN_BUILD"

// adminGrace is how long a helper whose context is cancelled has after SIGTERM to stop what it
// runs (a CNI plugin) before it is killed.
const adminGrace = 10 * time.Second

// adminCommand is the command that runs bulwark-admin beside the running binary (the same
// owner, no one else may write it, the same build: AdminBuildEnv) with args, executed through the
// descriptor that was checked, and the path it was found at. release closes that descriptor: once
// the command has started, or when it will not be. what names the operation in errors.
func adminCommand(ctx context.Context, what string, args ...string) (cmd *exec.Cmd, path string, release func(), err error) {
	fd, path, _, err := besideexe.Open(AdminName)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", what, err)
	}
	cmd = exec.CommandContext(ctx, "/proc/self/fd/"+strconv.Itoa(fd), args...)
	cmd.Args[0] = AdminName
	cmd.Env = append(os.Environ(), AdminBuildEnv+"="+sandbox.BuildID())
	return cmd, path, func() { unix.Close(fd) }, nil
}

// runAdmin runs bulwark-admin (adminCommand) with args and stdin (nil: none), and returns its
// standard output and the path it was found at. A helper that fails with a message on its
// standard error fails with that message.
func runAdmin(ctx context.Context, what string, stdin io.Reader, args ...string) ([]byte, string, error) {
	cmd, path, release, err := adminCommand(ctx, what, args...)
	if err != nil {
		return nil, "", err
	}
	defer release()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = adminGrace
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(strings.TrimPrefix(stderr.String(), "bulwark: ")); msg != "" {
			return nil, path, errors.New(msg)
		}
		return nil, path, fmt.Errorf("%s by %s: %w", what, path, err)
	}
	return stdout.Bytes(), path, nil
}
