package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decideAndStore decides req with the policy o selects and stores the decision in the cache
// opened with auditOnly.
func decideAndStore(t *testing.T, o SourceOptions, req *Request, auditOnly ...string) Decision {
	t.Helper()
	c := OpenDecisionCache(o, auditOnly...)
	if c == nil {
		t.Fatal("no decision cache for", o)
	}
	p, err := Load(o)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(context.Background(), p, WithRecorder(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := e.Decide(context.Background(), req)
	if err := c.Store(p, req, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func cacheFile(t *testing.T, root string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, "policy", "decisions", "*.json"))
	if err != nil || len(m) != 1 {
		t.Fatalf("cache files: %v %v", m, err)
	}
	return m[0]
}

func TestDecisionCacheHitIsTheDecision(t *testing.T) {
	root := t.TempDir()
	o := SourceOptions{StateRoot: root}
	req := allowedRequest(t)
	want := decideAndStore(t, o, req)
	pinned := OpenDecisionCache(o)
	pinned.Pin() // the entry is opened relative to the directory (bulwark-runc's lookups)
	defer pinned.Close()
	for _, c := range []*DecisionCache{OpenDecisionCache(o), pinned} {
		got, ok := c.Lookup(req)
		if !ok {
			t.Fatal("miss after store")
		}
		sameDecision(t, "cached decision", got, want)
	}
	st, err := os.Stat(cacheFile(t, root))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode: %v %v", st.Mode(), err)
	}

	other := allowedRequest(t)
	other.Capabilities = append(other.Capabilities, "CAP_SYS_ADMIN")
	if _, ok := OpenDecisionCache(o).Lookup(other); ok {
		t.Fatal("another request was answered from the cache")
	}
}

// An entry is used only if it verifies; anything else is decided by the policy again.
func TestDecisionCacheRefusesWhatDoesNotVerify(t *testing.T) {
	req := allowedRequest(t)
	denied := allowedRequest(t)
	denied.Capabilities = append(denied.Capabilities, "CAP_SYS_ADMIN")
	for name, spoil := range map[string]func(t *testing.T, root, file string){
		"readable by others": func(t *testing.T, _, file string) { chmod(t, file, 0o644) },
		"directory writable by others": func(t *testing.T, root, _ string) {
			chmod(t, filepath.Join(root, "policy", "decisions"), 0o777)
		},
		"other owner": func(t *testing.T, _, file string) {
			if err := os.Lchown(file, 12345, 12345); err != nil {
				t.Skip("chown needs root:", err)
			}
		},
		"symlink": func(t *testing.T, root, file string) {
			target := filepath.Join(root, "elsewhere.json")
			if err := os.Rename(file, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, file); err != nil {
				t.Fatal(err)
			}
		},
		"other policy": func(t *testing.T, _, file string) {
			edit(t, file, func(e *cacheEntry) { e.Policy = "sha256:0" })
		},
		"other build": func(t *testing.T, _, file string) {
			edit(t, file, func(e *cacheEntry) { e.Build = "sha256:0" })
		},
		"other input": func(t *testing.T, _, file string) {
			edit(t, file, func(e *cacheEntry) { e.Input = InputDigest(denied) })
		},
		"allow with reasons": func(t *testing.T, _, file string) {
			edit(t, file, func(e *cacheEntry) { e.Decision.Allow, e.Decision.Reasons = true, []Reason{{Code: "X"}} })
		},
		"oversize": func(t *testing.T, _, file string) {
			// A whole entry followed by more than the bound allows.
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, bytes.Repeat([]byte(" "), 1<<20)...)
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"torn": func(t *testing.T, _, file string) {
			if err := os.WriteFile(file, []byte(`{"format":`), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			o := SourceOptions{StateRoot: root}
			decideAndStore(t, o, req)
			// A cache whose directory was opened before (Pin, as bulwark-runc's session does)
			// checks it and its entry at the lookup all the same.
			pinned := OpenDecisionCache(o)
			pinned.Pin()
			defer pinned.Close()
			spoil(t, root, cacheFile(t, root))
			if d, ok := OpenDecisionCache(o).Lookup(req); ok {
				t.Fatalf("an entry that does not verify was used: %+v", d)
			}
			if d, ok := pinned.Lookup(req); ok {
				t.Fatalf("an entry that does not verify was used through the pinned directory: %+v", d)
			}
			// Nor when it is read ahead (Prefetch, hinted at its slot).
			hint(t, root, filepath.Base(cacheFile(t, root)))
			ahead := OpenDecisionCache(o)
			ahead.Pin()
			ahead.Prefetch()
			defer ahead.Close()
			if d, ok := ahead.Lookup(req); ok {
				t.Fatalf("an entry that does not verify was used when read ahead: %+v", d)
			}
		})
	}
}

func TestDecisionCacheFollowsThePolicyDirectory(t *testing.T) {
	root := t.TempDir()
	dir := writePolicyDir(t, map[string]string{"data.json": `{}`})
	o := SourceOptions{StateRoot: root, Dir: dir}
	req := allowedRequest(t)
	decideAndStore(t, o, req)
	if _, ok := OpenDecisionCache(o).Lookup(req); !ok {
		t.Fatal("miss after store")
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"x": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := OpenDecisionCache(o).Lookup(req); ok {
		t.Fatal("a decision of the directory's old content was used")
	}
	if OpenDecisionCache(SourceOptions{StateRoot: root, Bundle: "b.tar.gz", VerificationKeyFile: "k"}) != nil {
		t.Fatal("a bundle's decisions are cached (its rollback check would be skipped)")
	}
}

// A policy that may answer differently on the same input is never cached.
func TestDecisionCacheSkipsNonDeterministicPolicy(t *testing.T) {
	root := t.TempDir()
	dir := writePolicyDir(t, map[string]string{"p.rego": "package bulwark.run\n\n" +
		"decision := {\"allow\": time.now_ns() > 0, \"reasons\": []}\n"})
	o := SourceOptions{StateRoot: root, Dir: dir}
	req := allowedRequest(t)
	if d := decideAndStore(t, o, req); !d.Allow {
		t.Fatalf("policy denied: %+v", d)
	}
	if _, ok := OpenDecisionCache(o).Lookup(req); ok {
		t.Fatal("a decision of a non-deterministic policy was cached")
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// cacheEntry is the stored record's shape (document/cache.go).
type cacheEntry struct {
	Format   string   `json:"format"`
	Build    string   `json:"build"`
	Policy   string   `json:"policy"`
	Input    string   `json:"input"`
	Without  []string `json:"without,omitempty"`
	Decision Decision `json:"decision"`
}

func edit(t *testing.T, file string, change func(*cacheEntry)) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	change(&e)
	if data, err = json.Marshal(e); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A tenant granted no capability is told so by an empty list, which must survive the decision
// cache's encoding: decoded as nil ("the policy does not say"), the engine kept Docker's default
// capabilities and a cached run was denied CAP_NOT_GRANTED where a decided one was allowed.
func TestConstraintsKeepAnEmptyGrant(t *testing.T) {
	b, err := json.Marshal(Decision{Constraints: Constraints{Capabilities: []string{}, Egress: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	var d Decision
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Constraints.Capabilities == nil || d.Constraints.Egress == nil {
		t.Errorf("an empty grant came back as none said: %s", b)
	}
	if b, _ := json.Marshal(Decision{}); strings.Contains(string(b), "capabilities") {
		t.Errorf("a constraint the policy did not give is encoded: %s", b)
	}
}

// hint writes the decision cache's hint (document.Cache.SaveHint) under root.
func hint(t *testing.T, root, slot string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "policy", "decisions", "hint"), []byte(slot), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A pinned cache's lookup leaves a hint at its slot (SaveHint), and the next process's cache reads
// that entry ahead (Prefetch): its lookup of the same request is answered without reading the
// file again, with the same decision; another request reads its own slot as before. A hint that
// names no slot is ignored.
func TestDecisionCacheReadsAheadTheHintedEntry(t *testing.T) {
	root := t.TempDir()
	o := SourceOptions{StateRoot: root}
	req := allowedRequest(t)
	want := decideAndStore(t, o, req)
	first := OpenDecisionCache(o)
	first.Pin()
	first.Prefetch() // no hint yet
	if _, ok := first.Lookup(req); !ok {
		t.Fatal("miss after store")
	}
	first.SaveHint()
	first.Close()
	slot := filepath.Base(cacheFile(t, root))
	if b, err := os.ReadFile(filepath.Join(root, "policy", "decisions", "hint")); err != nil || string(b) != slot {
		t.Fatalf("hint = %q, %v; want %q", b, err, slot)
	}

	ahead := OpenDecisionCache(o)
	ahead.Pin()
	ahead.Prefetch()
	defer ahead.Close()
	// Read ahead: the file is no longer needed.
	if err := os.Rename(cacheFile(t, root), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	got, ok := ahead.Lookup(req)
	if !ok {
		t.Fatal("the hinted entry was not read ahead")
	}
	sameDecision(t, "decision read ahead", got, want)
	other := allowedRequest(t)
	other.Capabilities = append(other.Capabilities, "CAP_SYS_ADMIN")
	if _, ok := ahead.Lookup(other); ok {
		t.Fatal("another request was answered by the entry read ahead")
	}

	if err := os.Rename(filepath.Join(root, "moved"), filepath.Join(root, "policy", "decisions", slot)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../x.json", "ZZ.json", slot + "\n", "", "hint"} {
		hint(t, root, bad)
		c := OpenDecisionCache(o)
		c.Pin()
		c.Prefetch()
		if _, ok := c.Lookup(req); !ok { // read from its slot as before
			t.Fatalf("hint %q: miss", bad)
		}
		c.Close()
	}
}

// sameDecision fails the test unless got is want, the time each took aside (what names got).
func sameDecision(t *testing.T, what string, got, want Decision) {
	t.Helper()
	want.Duration, got.Duration = 0, 0
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("%s differs:\n%s\n%s", what, b, a)
	}
}
