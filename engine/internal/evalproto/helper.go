package evalproto

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/besideexe"
	"bulwark.dev/bulwark/internal/headbuf"
)

// HelperName is the policy evaluator's file name: a caller executes it from beside its own binary
// (engine/runcgate/evaluator).
const HelperName = "bulwark-policy"

// maxHelperStderr is how much of the evaluator's standard error a refusal quotes.
const maxHelperStderr = 4 << 10

// Helper is bulwark-policy beside the running binary. It must be a regular executable file of the
// running binary's owner that no one else may write: whoever could replace it would decide every
// request. It is executed through a descriptor of the file that was checked, and only if that is
// still the file the decision cache's key names.
func Helper() (*Evaluator, error) {
	// The file is identified (the decision cache's key names it) now, and opened only to run.
	path, identity, caller, err := besideexe.Stat(HelperName)
	if err != nil {
		return nil, fmt.Errorf("policy evaluator: %w", err)
	}
	return &Evaluator{Identity: identity, Caller: caller, Start: func(ctx context.Context) (io.WriteCloser, io.Reader, func() error, error) {
		fd, _, st, err := besideexe.Open(HelperName)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("policy evaluator: %w", err)
		}
		defer unix.Close(fd)
		if st.Dev != identity.Dev || st.Ino != identity.Ino || st.Ctim != identity.Ctim {
			return nil, nil, nil, fmt.Errorf("policy evaluator %s was replaced during the request", path)
		}
		cmd := exec.CommandContext(ctx, "/proc/self/fd/"+strconv.Itoa(fd))
		cmd.Args[0] = HelperName
		cmd.Env = []string{}
		stderr := &headbuf.Buffer{Max: maxHelperStderr}
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("policy evaluator: %w", err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("policy evaluator: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, nil, fmt.Errorf("start policy evaluator %s: %w", path, err)
		}
		wait := func() error {
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("policy evaluator: %w%s", err, stderr.Quoted())
			}
			return nil
		}
		return in, out, wait, nil
	}}, nil
}
