package gencheck

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Names spells Go types in a file generated from them and collects the imports that spelling
// needs; the runtime-spec package is named specs.
type Names struct {
	imports map[string]string // package path -> name used
}

// Import records that the file uses package path, named name.
func (n *Names) Import(path, name string) {
	if n.imports == nil {
		n.imports = map[string]string{}
	}
	n.imports[path] = name
}

// Type is t as the generated file spells it.
func (n *Names) Type(t reflect.Type) (string, error) {
	switch t.Kind() {
	case reflect.Pointer:
		e, err := n.Type(t.Elem())
		return "*" + e, err
	case reflect.Slice:
		e, err := n.Type(t.Elem())
		return "[]" + e, err
	case reflect.Map:
		k, err := n.Type(t.Key())
		if err != nil {
			return "", err
		}
		v, err := n.Type(t.Elem())
		return "map[" + k + "]" + v, err
	case reflect.Interface:
		if t.Name() == "" && t.NumMethod() == 0 {
			return "any", nil
		}
	}
	if t.Name() == "" {
		return "", fmt.Errorf("unnamed type %s", t)
	}
	if t.PkgPath() == "" {
		return t.Name(), nil
	}
	name := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
	if t.PkgPath() == "github.com/opencontainers/runtime-spec/specs-go" {
		name = "specs"
	}
	n.Import(t.PkgPath(), name)
	return name + "." + t.Name(), nil
}

// WriteImports writes the file's import block: the standard library's packages first, then the
// others, each group sorted.
func (n *Names) WriteImports(b *strings.Builder) {
	paths := make([]string, 0, len(n.imports))
	for p := range n.imports {
		paths = append(paths, p)
	}
	std := func(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }
	sort.Slice(paths, func(i, j int) bool {
		if si, sj := std(paths[i]), std(paths[j]); si != sj {
			return si
		}
		return paths[i] < paths[j]
	})
	b.WriteString("import (\n")
	for i, p := range paths {
		if i > 0 && std(paths[i-1]) && !std(p) {
			b.WriteString("\n")
		}
		if name := n.imports[p]; name != p[strings.LastIndex(p, "/")+1:] {
			fmt.Fprintf(b, "\t%s %q\n", name, p)
		} else {
			fmt.Fprintf(b, "\t%q\n", p)
		}
	}
	b.WriteString(")\n\n")
}
