package policy

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// Query is the document every Bulwark policy must define.
const Query = "data.bulwark.run.decision"

//go:embed default
var defaultFS embed.FS

// Policy is a loaded, not yet prepared, policy: modules and data. Rego unit test modules
// (*_test.rego) are loaded only by LoadForTests.
type Policy struct {
	Modules map[string]*ast.Module
	Data    map[string]any
	Info    Info
	// commit runs after the policy was prepared successfully (a bundle records its revision
	// then, so a bundle that fails to compile does not raise the rollback floor).
	commit func() error
}

// LoadEmbedded loads the default policy compiled into the binary.
func LoadEmbedded() (*Policy, error) { return loadEmbedded(false) }

func loadEmbedded(withTests bool) (*Policy, error) {
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil {
		return nil, fmt.Errorf("embedded policy: %w", err)
	}
	p, err := loadFS(sub, ".", withTests)
	if err != nil {
		return nil, fmt.Errorf("embedded policy: %w", err)
	}
	p.Info = Info{Source: SourceEmbedded, Revision: contentRevision(p)}
	return p, nil
}

// LoadForTests loads a policy directory, or the embedded policy when dir is "", together with
// its Rego unit tests, for RunTests.
func LoadForTests(dir string) (*Policy, error) {
	if dir == "" {
		return loadEmbedded(true)
	}
	return loadDir(dir, true)
}

// LoadDir loads .rego modules and data files (data.json / data.yaml, placed at their
// directory's path as OPA does) from an operator's directory. A directory with data but no
// policy modules gives tenant data to the embedded default rules.
func LoadDir(dir string) (*Policy, error) { return loadDir(dir, false) }

func loadDir(dir string, withTests bool) (*Policy, error) {
	p, err := loadFS(nil, dir, withTests)
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", dir, err)
	}
	if !hasPolicyModules(p.Modules) {
		def, err := loadEmbedded(withTests)
		if err != nil {
			return nil, err
		}
		p.Modules = def.Modules
	}
	p.Info = Info{Source: SourceDirectory, Location: dir, Revision: contentRevision(p)}
	return p, nil
}

// loadFS loads modules and data below path. Test modules are skipped unless withTests: parsing
// them would double the load time of every one-shot runtime invocation for nothing.
func loadFS(fsys fs.FS, path string, withTests bool) (*Policy, error) {
	l := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).WithProcessAnnotation(withTests)
	if fsys != nil {
		l = l.WithFS(fsys)
	}
	res, err := l.Filtered([]string{path}, func(_ string, info fs.FileInfo, _ int) bool {
		return !withTests && !info.IsDir() && isTestModule(info.Name())
	})
	if err != nil {
		return nil, err
	}
	p := &Policy{Modules: map[string]*ast.Module{}, Data: res.Documents}
	for name, m := range res.Modules {
		p.Modules[name] = m.Parsed
	}
	if p.Data == nil {
		p.Data = map[string]any{}
	}
	return p, nil
}

// isTestModule reports whether a module holds Rego unit tests (left out of evaluation).
func isTestModule(name string) bool { return strings.HasSuffix(name, "_test.rego") }

func hasPolicyModules(mods map[string]*ast.Module) bool {
	for name := range mods {
		if !isTestModule(name) {
			return true
		}
	}
	return false
}

// contentRevision digests modules and data, so two hosts can tell they run the same policy.
func contentRevision(p *Policy) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(p.Modules)) {
		fmt.Fprintf(h, "%s\x00%s\x00", name, p.Modules[name].String())
	}
	data, _ := json.Marshal(p.Data) // maps marshal with sorted keys
	h.Write(data)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Load loads the policy the options select.
func Load(o SourceOptions) (*Policy, error) {
	switch {
	case o.Dir != "" && o.Bundle != "":
		return nil, errors.New("choose a policy directory or a bundle, not both")
	case o.Dir != "":
		return LoadDir(o.Dir)
	case o.Bundle != "":
		if o.VerificationKeyFile == "" {
			return nil, errors.New("a bundle needs a verification key: unsigned bundles are never loaded")
		}
		key, err := os.ReadFile(o.VerificationKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read verification key: %w", err)
		}
		return LoadBundle(o.Bundle, BundleOptions{VerificationKey: key, StateRoot: o.StateRoot})
	case o.VerificationKeyFile != "":
		return nil, errors.New("a verification key was given without a bundle")
	}
	return LoadEmbedded()
}
