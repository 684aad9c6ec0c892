// Package evaluator is the policy evaluator of bulwark-runc and of the bulwark CLI, the
// bulwark-policy binary: it loads and prepares the policy and decides the requests their decision
// caches could not answer (and the CLI's quota and storage requests), over the protocol of
// engine/internal/evalproto. It is the only part of their decision path that links OPA, so that a
// request whose decision is cached executes a binary without it (Go initialises every linked
// package at every start).
package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/engine/internal/evalproto"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// gcMemoryLimit is when the garbage collector runs (see Main).
const gcMemoryLimit = 128 << 20

// Main is bulwark-policy: it serves one conversation on its standard input and output and
// returns the exit status.
func Main() int {
	// The policy's cold path (parse, compile, prepare: ≈ 30 MB that are garbage once it has
	// decided) spends about a third of its time collecting when the GC runs; the evaluator lives
	// for one runtime request: it collects only when its memory reaches the limit.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcMemoryLimit)
	if err := Serve(context.Background(), os.Stdin, os.Stdout, sandbox.BuildID()); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark-policy:", err)
		return 1
	}
	return 0
}

// Serve answers one conversation read from r and written to w (evalproto) until r ends. build is
// this binary's build stamp: a runtime of another build is answered with an error.
func Serve(ctx context.Context, r io.Reader, w io.Writer, build string) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	enc := json.NewEncoder(w)
	var hello evalproto.Hello
	if err := dec.Decode(&hello); err != nil {
		return fmt.Errorf("read the caller's hello: %w", err)
	}
	pe, prepared, err := prepare(ctx, hello, build)
	if err != nil {
		prepared.Error = err.Error()
	}
	if werr := enc.Encode(prepared); werr != nil || err != nil {
		return errors.Join(err, werr)
	}
	deterministic := prepared.Deterministic
	for {
		var ask evalproto.Ask
		if err := dec.Decode(&ask); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read a request: %w", err)
		}
		if err := enc.Encode(answer(ctx, pe, ask, deterministic)); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
	}
}

// answer decides one request, on exactly the document the caller digested; or one quota or
// storage request.
func answer(ctx context.Context, pe *policy.Engine, ask evalproto.Ask, deterministic bool) evalproto.Answer {
	n := 0
	for _, set := range []bool{ask.Request != nil, ask.Quota != nil, ask.Storage != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return evalproto.Answer{Error: "want exactly one of a request document, a quota and a storage request"}
	case ask.Quota != nil:
		d := pe.DecideQuota(ctx, *ask.Quota)
		return evalproto.Answer{Quota: &d}
	case ask.Storage != nil:
		d := pe.DecideStorage(ctx, *ask.Storage)
		return evalproto.Answer{Storage: &d}
	}
	input := document.InputDigest(ask.Request)
	if input == "" || input != ask.Input {
		return evalproto.Answer{Error: fmt.Sprintf("the request document decoded with digest %s, not the runtime's %s", input, ask.Input)}
	}
	return evalproto.Answer{Decision: pe.Decide(ctx, ask.Request), Input: input, Deterministic: deterministic}
}

// prepare loads and prepares the policy hello selects, reporting the step times and a newly
// accepted bundle revision.
func prepare(ctx context.Context, hello evalproto.Hello, build string) (*policy.Engine, evalproto.Prepared, error) {
	var out evalproto.Prepared
	if hello.Build != build {
		return nil, out, fmt.Errorf("bulwark-policy of build %q cannot decide for a runtime of build %q: install the binaries of one build together", build, hello.Build)
	}
	src := hello.Source
	start := time.Now()
	p, err := policy.Load(src)
	if err != nil {
		return nil, out, err
	}
	out.Load = time.Since(start)
	start = time.Now()
	watch, err := gate.WatchBundle(src.StateRoot, p.Info)
	var pe *policy.Engine
	if err == nil {
		// The runtime records each decision in its own audit trail.
		pe, err = policy.NewEngine(ctx, p, policy.WithRecorder(nil))
	}
	if err == nil {
		out.Accepted, err = watch.Accepted()
	}
	if err != nil {
		return nil, out, err
	}
	out.Prepare = time.Since(start)
	storable := policy.StorableOf(p)
	out.Info, out.Deterministic = p.Info, storable.Deterministic
	out.AuditOnlyUnread = len(hello.AuditOnly) > 0 && storable.Unread(hello.AuditOnly)
	return pe, out, nil
}

// InProcess is an evaluator served by this process (Serve over pipes), for tests of the runtime
// side: the same conversation as with bulwark-policy, without a binary to execute.
func InProcess() (*evalproto.Evaluator, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return nil, fmt.Errorf("stat own binary: %w", err)
	}
	return &evalproto.Evaluator{Identity: st, Start: func(ctx context.Context) (io.WriteCloser, io.Reader, func() error, error) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := Serve(ctx, inR, outW, sandbox.BuildID())
			outW.CloseWithError(err)
			inR.Close()
			done <- err
		}()
		return inW, outR, func() error { return <-done }, nil
	}}, nil
}
