package runcgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/engine/runcgate/internal/evalproto"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// EvaluatorName is the policy evaluator's file name: bulwark-runc executes it, from beside its own
// binary, for a request its decision cache cannot answer (engine/runcgate/evaluator).
const EvaluatorName = "bulwark-policy"

// maxEvaluatorStderr is how much of the evaluator's standard error a refusal quotes.
const maxEvaluatorStderr = 4 << 10

// helperEvaluator is bulwark-policy beside the running binary. It must be a regular executable
// file of the runtime binary's owner that no one else may write: whoever could replace it would
// decide every request. It is executed through a descriptor of the file that was checked, and
// only if that is still the file the decision cache's key names.
func helperEvaluator() (*evalproto.Evaluator, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil || !filepath.IsAbs(exe) {
		return nil, fmt.Errorf("policy evaluator: own binary: %q %v", exe, err)
	}
	path := filepath.Join(filepath.Dir(exe), EvaluatorName)
	open := func() (int, unix.Stat_t, error) {
		var own, st unix.Stat_t
		fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, st, fmt.Errorf("policy evaluator %s (install it beside %s): %w", path, exe, err)
		}
		if err := unix.Stat("/proc/self/exe", &own); err != nil {
			unix.Close(fd)
			return -1, st, fmt.Errorf("stat own binary: %w", err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, st, fmt.Errorf("stat policy evaluator %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != own.Uid || st.Mode&0o022 != 0 || st.Mode&0o100 == 0 {
			unix.Close(fd)
			return -1, st, fmt.Errorf("policy evaluator %s is not a regular executable file of the runtime binary's owner that no one else may write", path)
		}
		return fd, st, nil
	}
	fd, identity, err := open()
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return &evalproto.Evaluator{Identity: identity, Start: func(ctx context.Context) (io.WriteCloser, io.Reader, func() error, error) {
		fd, st, err := open()
		if err != nil {
			return nil, nil, nil, err
		}
		defer unix.Close(fd)
		if st.Dev != identity.Dev || st.Ino != identity.Ino || st.Ctim != identity.Ctim {
			return nil, nil, nil, fmt.Errorf("policy evaluator %s was replaced during the request", path)
		}
		cmd := exec.CommandContext(ctx, "/proc/self/fd/"+strconv.Itoa(fd))
		cmd.Args[0] = EvaluatorName
		cmd.Env = []string{}
		stderr := &limitedBuffer{max: maxEvaluatorStderr}
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
				return fmt.Errorf("policy evaluator: %w%s", err, stderr.quote())
			}
			return nil
		}
		return in, out, wait, nil
	}}, nil
}

// evaluation is one conversation with an evaluator, started on a runtime request's first cache
// miss and ended (close) with the request's decision.
type evaluation struct {
	in   io.WriteCloser
	enc  *json.Encoder
	dec  *json.Decoder
	wait func() error
}

// startEvaluation starts ev and has it load and prepare the policy src selects.
func startEvaluation(ctx context.Context, ev *evalproto.Evaluator, src document.SourceOptions) (*evaluation, evalproto.Prepared, error) {
	in, out, wait, err := ev.Start(ctx)
	if err != nil {
		return nil, evalproto.Prepared{}, err
	}
	e := &evaluation{in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out), wait: wait}
	e.dec.DisallowUnknownFields()
	var prepared evalproto.Prepared
	err = e.enc.Encode(evalproto.Hello{Build: sandbox.BuildID(), Source: src})
	if err == nil {
		err = e.dec.Decode(&prepared)
	}
	if err == nil && prepared.Error != "" {
		e.close() // it ends after saying why
		return nil, prepared, errors.New(prepared.Error)
	}
	if err != nil {
		return nil, prepared, errors.Join(err, e.close())
	}
	return e, prepared, nil
}

// decide has the evaluator decide req, whose digest is input. It returns the decision and
// whether the policy may be cached; any doubt is an error.
func (e *evaluation) decide(req *document.Request, input string) (document.Decision, bool, error) {
	var ans evalproto.Answer
	err := e.enc.Encode(evalproto.Ask{Request: req, Input: input})
	if err == nil {
		err = e.dec.Decode(&ans)
	}
	switch {
	case err != nil:
		return document.Decision{}, false, errors.Join(fmt.Errorf("policy evaluator: %w", err), e.close())
	case ans.Error != "":
		return document.Decision{}, false, fmt.Errorf("policy evaluator: %s", ans.Error)
	case ans.Input != input:
		return document.Decision{}, false, fmt.Errorf("policy evaluator decided input %s, not %s", ans.Input, input)
	}
	return ans.Decision, ans.Deterministic, nil
}

// close ends the conversation and waits for the evaluator (nil: none was started).
func (e *evaluation) close() error {
	if e == nil || e.in == nil {
		return nil
	}
	e.in.Close()
	e.in = nil
	return e.wait()
}
