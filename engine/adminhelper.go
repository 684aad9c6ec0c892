package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
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
// standard error fails with that message, and with the class its exit status names (adminFailure).
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
		return nil, path, adminFailure(what, path, err, stderr.String())
	}
	return stdout.Bytes(), path, nil
}

// A helper command of bulwark-admin (TrustResolveCommand, CNICommand) that fails tells its
// caller the class (errdefs) of its failure by its exit status: helperClassStatus plus the
// class's index in helperClasses (HelperStatus). Its message alone, on its standard error, would
// leave the caller's error of no class: a helper's "no such network" or "refused by policy"
// would reach the CLI's exit status and the daemon's HTTP status as an engine failure.
const helperClassStatus = 80

var helperClasses = []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
	errdefs.ErrConflict, errdefs.ErrRefusedByFloor, errdefs.ErrRefusedByPolicy, errdefs.ErrUntrusted}

// HelperStatus is the exit status a helper command of bulwark-admin fails with for err: the one
// that names err's class, 125 (the engine's failure, as the CLI's) for an error of no class.
func HelperStatus(err error) int {
	if i := slices.Index(helperClasses, errdefs.Class(err)); i >= 0 {
		return helperClassStatus + i
	}
	return 125
}

// adminFailure is the error of a helper run by runAdmin that failed with err after writing
// stderr: its message if it wrote one (as "bulwark: MESSAGE"), else what, the helper's path and
// err; of the class its exit status names (HelperStatus).
func adminFailure(what, path string, err error, stderr string) error {
	var class error
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if i := exit.ExitCode() - helperClassStatus; i >= 0 && i < len(helperClasses) {
			class = helperClasses[i]
		}
	}
	if msg := strings.TrimSpace(strings.TrimPrefix(stderr, "bulwark: ")); msg != "" {
		if class != nil {
			return errdefs.New(class, msg)
		}
		return errors.New(msg)
	}
	err = fmt.Errorf("%s by %s: %w", what, path, err)
	if class != nil {
		return errdefs.Wrap(class, err)
	}
	return err
}
