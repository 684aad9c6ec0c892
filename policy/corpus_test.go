package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// corpusCase is one file in testdata/corpus: a request document and the decision it must get.
// "$TMP" in the request and setup stands for a fresh temporary directory below corpusRoot,
// where setup creates real directories, files and symlinks before the document is parsed.
type corpusCase struct {
	Description string `json:"description"`
	Setup       struct {
		Dirs     []string          `json:"dirs"`
		Files    []string          `json:"files"`
		Symlinks map[string]string `json:"symlinks"`
	} `json:"setup"`
	Want struct {
		Allow    bool     `json:"allow"`
		Codes    []string `json:"codes"`
		Paths    []string `json:"paths"`
		Messages []string `json:"messages"`
	} `json:"want"`
	Request json.RawMessage `json:"request"`
}

// corpusRoot holds every corpus case's $TMP (resolved, so it compares with resolved bind
// sources). The test tenants' data names it as "$CORPUS": tenant acme may bind below it.
var corpusRoot string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "policy-corpus-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if corpusRoot, err = filepath.EvalSymlinks(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// testEngine prepares the embedded rules with the test tenants (testdata/tenants: data only,
// "$CORPUS" replaced by corpusRoot).
func testEngine(t testing.TB, opts ...Option) *Engine {
	t.Helper()
	data, err := os.ReadFile("testdata/tenants/data.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data = bytes.ReplaceAll(data, []byte("$CORPUS"), []byte(corpusRoot))
	if err := os.WriteFile(filepath.Join(dir, "data.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return mustPrepare(t, p, opts...)
}

// mustPrepare prepares p without a decision recorder.
func mustPrepare(t testing.TB, p *Policy, opts ...Option) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), p, append([]Option{WithRecorder(nil)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func loadCase(t *testing.T, file string) (corpusCase, []byte) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c corpusCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	tmp, err := os.MkdirTemp(corpusRoot, "case-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	sub := func(s string) string { return strings.ReplaceAll(s, "$TMP", tmp) }
	for _, d := range c.Setup.Dirs {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range c.Setup.Files {
		p := filepath.Join(tmp, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range c.Setup.Symlinks {
		if err := os.Symlink(sub(target), filepath.Join(tmp, name)); err != nil {
			t.Fatal(err)
		}
	}
	return c, []byte(sub(string(c.Request)))
}

func TestCorpus(t *testing.T) {
	e := testEngine(t)
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	seen := map[string]bool{}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			c, doc := loadCase(t, file)
			d := e.DecideDocument(context.Background(), doc)
			var codes, paths, msgs []string
			for _, r := range d.Reasons {
				codes = append(codes, r.Code)
				paths = append(paths, r.Path)
				msgs = append(msgs, r.Message)
				seen[r.Code] = true
			}
			if d.Allow != c.Want.Allow {
				t.Errorf("%s: allow = %v, want %v (reasons %+v)", c.Description, d.Allow, c.Want.Allow, d.Reasons)
			}
			if !sameSet(codes, c.Want.Codes) {
				t.Errorf("%s: codes = %v, want %v (reasons %+v)", c.Description, codes, c.Want.Codes, d.Reasons)
			}
			for _, p := range c.Want.Paths {
				if !slices.Contains(paths, p) {
					t.Errorf("path %q not among %v", p, paths)
				}
			}
			for _, m := range c.Want.Messages {
				if !slices.Contains(msgs, m) {
					t.Errorf("message %q not among %q", m, msgs)
				}
			}
			if d.Revision == "" {
				t.Error("decision has no policy revision")
			}
		})
	}
	// Every reason the default policy can give appears in the corpus at least once.
	for _, code := range []string{
		"CAP_FORBIDDEN", "CAP_NOT_GRANTED", "PRIVILEGED", "NAMESPACE_SHARED", "MOUNT_HOST_PATH_FORBIDDEN",
		"MOUNT_RUNTIME_SOCKET", "MOUNT_WRITABLE_NOT_ALLOWED", "MOUNT_TYPE_NOT_ALLOWED", "SECCOMP_UNCONFINED",
		"MOUNT_HOST_PATH_NOT_ALLOWED", "MOUNT_STATE_ROOT", "MEMORY_LIMIT_MISSING", "MEMORY_LIMIT_ABOVE_MAX", "PIDS_LIMIT_MISSING", "PIDS_LIMIT_ABOVE_MAX",
		"IMAGE_UNVERIFIED", "DEVICE_NOT_ALLOWED", "ROOTFS_WRITABLE", "NO_NEW_PRIVS_DISABLED",
		"SYSCTL_NOT_ALLOWED", "TENANT_UNKNOWN", "REQUEST_INVALID",
	} {
		if !seen[code] && !t.Failed() {
			t.Errorf("no corpus case produces %s", code)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// TestToValueMatchesJSON checks the hand-written AST conversion against OPA's own conversion of
// the JSON encoding, for every valid corpus request.
func TestToValueMatchesJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/corpus/*.json")
	n := 0
	for _, file := range files {
		_, doc := loadCase(t, file)
		req, err := ParseRequest(doc)
		if err != nil {
			continue
		}
		n++
		data, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := util.UnmarshalJSON(data, &generic); err != nil {
			t.Fatal(err)
		}
		want, err := ast.InterfaceToValue(generic)
		if err != nil {
			t.Fatal(err)
		}
		if got := toValue(req); got.Compare(want) != 0 {
			t.Errorf("%s:\n got %v\nwant %v", file, got, want)
		}
	}
	if n < 30 {
		t.Fatalf("only %d valid corpus requests", n)
	}
}

// TestCorpusDocumentsMatchSchema keeps the Go types, the JSON Schema and the corpus in step:
// every corpus request that parses re-encodes to a document that still validates.
func TestCorpusDocumentsMatchSchema(t *testing.T) {
	files, _ := filepath.Glob("testdata/corpus/*.json")
	for _, file := range files {
		_, doc := loadCase(t, file)
		req, err := ParseRequest(doc)
		if err != nil {
			continue
		}
		out, _ := json.Marshal(req)
		if err := Validate(out); err != nil {
			t.Errorf("%s: re-encoded request fails the schema: %v", file, err)
		}
		var a, b any
		_ = json.Unmarshal(doc, &a)
		_ = json.Unmarshal(out, &b)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !strings.Contains(file, "symlink") && !strings.Contains(file, "dotdot") && !strings.Contains(file, "lowercase") && !bytes.Equal(ja, jb) {
			t.Errorf("%s: request does not round-trip through the Go types:\n in %s\nout %s", file, ja, jb)
		}
	}
}
