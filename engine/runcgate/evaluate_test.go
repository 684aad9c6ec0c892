package runcgate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"bulwark.dev/bulwark/engine/internal/evalproto"
	"bulwark.dev/bulwark/engine/runcgate/evaluator"
	"bulwark.dev/bulwark/policy"
)

// inProcess is the policy evaluator of these tests: bulwark-policy's conversation served by the
// test binary itself.
func inProcess(t *testing.T) *evalproto.Evaluator {
	t.Helper()
	ev, err := evaluator.InProcess()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// counting wraps ev to count the conversations started.
func counting(ev *evalproto.Evaluator) (*evalproto.Evaluator, *atomic.Int32) {
	n := &atomic.Int32{}
	cp := *ev
	cp.Start = func(ctx context.Context) (io.WriteCloser, io.Reader, func() error, error) {
		n.Add(1)
		return ev.Start(ctx)
	}
	return &cp, n
}

// allowAll and denyAll are complete policies for a policy directory.
const (
	allowAll = "package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": []}\n"
	denyAll  = "package bulwark.run\n\ndecision := {\"allow\": false, \"reasons\": [{\"code\": \"DENY_ALL\", \"message\": \"no\", \"path\": \"\"}]}\n"
)

func writePolicy(t *testing.T, dir, module string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
}

// decideCreate decides a create of a plain bundle with cfg and, allowed, makes it durable.
func decideCreate(t *testing.T, cfg Config, id string) (*Decision, error) {
	t.Helper()
	rt, _, _ := runcGate(t)
	d, err := Decide(context.Background(), cfg, rt,
		Request{Operation: policy.OpCreate, Tenant: "default", ContainerID: id, Bundle: t.TempDir(), Spec: runcSpec()})
	if err == nil {
		d.Binds.Close()
		d.Hooks.Close()
		if derr := d.Durable(); derr != nil {
			t.Fatal(derr)
		}
	}
	return d, err
}

// The evaluator is started only for a request the cache cannot answer: a miss is decided by it
// and stored, the same request again is answered from the cache without it; a change of the
// policy directory (its revision) or of the evaluator's binary is a miss again, decided by the
// new policy.
func TestEvaluatorOnlyOnMiss(t *testing.T) {
	_, _, sr := runcGate(t)
	pol := t.TempDir()
	writePolicy(t, pol, allowAll)
	ev, starts := counting(inProcess(t))
	cfg := Config{Evaluator: ev, StateRoot: sr, PolicyDir: pol}
	for i, wantCached := range []bool{false, true} {
		d, err := decideCreate(t, cfg, "m1")
		if err != nil || d.Cached != wantCached {
			t.Fatalf("decision %d: cached %v, %v; want allowed, cached %v", i, d != nil && d.Cached, err, wantCached)
		}
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("evaluator started %d times for a miss and a hit, want 1", n)
	}

	writePolicy(t, pol, denyAll) // a new revision of the directory
	_, err := decideCreate(t, cfg, "m1")
	var denied *policy.DeniedError
	if !errors.As(err, &denied) || denied.Decision.Reasons[0].Code != "DENY_ALL" {
		t.Fatalf("after the policy changed: %v, want its denial", err)
	}
	if n := starts.Load(); n != 2 {
		t.Fatalf("evaluator started %d times, want 2 (the new policy decided)", n)
	}

	other := *cfg.Evaluator
	other.Identity.Ino++ // another evaluator binary: its embedded policy may differ
	cfg.Evaluator, starts = counting(&other)
	if _, err := decideCreate(t, cfg, "m1"); !errors.As(err, &denied) {
		t.Fatalf("with another evaluator: %v, want the denial", err)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("another evaluator's binary was answered from the cache (%d starts)", n)
	}
	got := ""
	for _, r := range runcRecords(t, sr) {
		if r.Action == "decision" {
			got += r.Attrs["result"] + ":" + r.Attrs["cached"] + " "
		}
	}
	if got != "allow: allow:true deny: deny: " {
		t.Errorf("audited decisions %q", got)
	}
}

// A cache entry that does not verify is decided again by the evaluator, never used.
func TestCorruptCacheEntryDecidedAgain(t *testing.T) {
	_, _, sr := runcGate(t)
	ev, starts := counting(inProcess(t))
	cfg := Config{Evaluator: ev, StateRoot: sr}
	if _, err := decideCreate(t, cfg, "k1"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(sr, "policy", "decisions", "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	for i, spoil := range []func(){
		func() { os.WriteFile(files[0], []byte(`{"format":`), 0o600) },
		func() { os.Chmod(files[0], 0o644) },
	} {
		spoil()
		d, err := decideCreate(t, cfg, "k1")
		if err != nil || d.Cached {
			t.Fatalf("spoiled entry %d: cached %v, %v", i, d != nil && d.Cached, err)
		}
		if n := starts.Load(); n != int32(i+2) {
			t.Fatalf("spoiled entry %d: evaluator started %d times", i, n)
		}
	}
}

// Whatever goes wrong with the evaluator refuses the request (and the refusal is audited);
// nothing is cached.
func TestEvaluatorFailsClosed(t *testing.T) {
	fake := func(serve func(r io.Reader, w io.Writer)) *evalproto.Evaluator {
		ev := *inProcess(t)
		ev.Start = func(ctx context.Context) (io.WriteCloser, io.Reader, func() error, error) {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			go func() {
				serve(inR, outW)
				outW.Close()
				io.Copy(io.Discard, inR)
			}()
			return inW, outR, func() error { return nil }, nil
		}
		return &ev
	}
	// answering says hello, then answers the first request with a.
	answering := func(a *evalproto.Answer) func(r io.Reader, w io.Writer) {
		return func(r io.Reader, w io.Writer) {
			dec, enc := json.NewDecoder(r), json.NewEncoder(w)
			var h evalproto.Hello
			dec.Decode(&h)
			enc.Encode(evalproto.Prepared{})
			var ask evalproto.Ask
			if a != nil && dec.Decode(&ask) == nil {
				enc.Encode(a)
			}
		}
	}
	for name, tc := range map[string]struct {
		ev   *evalproto.Evaluator
		want string
	}{
		"cannot start": {func() *evalproto.Evaluator {
			ev := *inProcess(t)
			ev.Start = func(context.Context) (io.WriteCloser, io.Reader, func() error, error) {
				return nil, nil, nil, errors.New("no evaluator here")
			}
			return &ev
		}(), "no evaluator here"},
		"another build": {fake(func(r io.Reader, w io.Writer) {
			evaluator.Serve(context.Background(), r, w, "another-build")
		}), "install the binaries of one build together"},
		"decides another document": {fake(answering(&evalproto.Answer{Input: "sha256:other", Deterministic: true,
			Decision: policy.Decision{Allow: true, Reasons: []policy.Reason{}, Revision: "r"}})), "decided input sha256:other"},
		"ends before answering": {fake(answering(nil)), "EOF"},
		"says an error":         {fake(answering(&evalproto.Answer{Error: "broken"})), "broken"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, sr := runcGate(t)
			d, err := decideCreate(t, Config{Evaluator: tc.ev, StateRoot: sr}, "f1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decision %+v, err %v; want a refusal saying %q", d, err, tc.want)
			}
			recs := runcRecords(t, sr)
			if last := recs[len(recs)-1]; last.Action != "refused" || last.Attrs["step"] != "policy" {
				t.Errorf("last record %+v, want engine.refused at step policy", last)
			}
			if files, _ := filepath.Glob(filepath.Join(sr, "policy", "decisions", "*.json")); len(files) != 0 {
				t.Errorf("cached after a failed evaluation: %v", files)
			}
		})
	}
}
