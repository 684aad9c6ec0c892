package specjson

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"bulwark.dev/bulwark/internal/gencheck"
)

// encoderFile is the spec's encoder, generated from its types.
const encoderFile = "encode_gen.go"

// The generated encoder is the one the spec's types make (go test ./internal/specjson -run
// TestEncoderGenerated -args -update after updating runtime-spec); TestEncodeIsJSON checks what
// it writes against encoding/json.
func TestEncoderGenerated(t *testing.T) {
	g := newGenerator()
	src, err := g.source("TestEncoderGenerated", g.encodeFunc)
	if err != nil {
		t.Fatal(err)
	}
	gencheck.Check(t, encoderFile, src)
}

// encodeFunc writes append<Type>, which appends a value of struct type t as encoding/json does.
func (g *generator) encodeFunc(t reflect.Type) error {
	fs, err := fields(t)
	if err != nil {
		return err
	}
	tn, err := g.typeName(t)
	if err != nil {
		return err
	}
	fmt.Fprintf(&g.b, "// append%s appends v as encoding/json encodes it.\n", t.Name())
	fmt.Fprintf(&g.b, "func append%s(e *encoder, v *%s) {\nn := e.Object()\n", t.Name(), tn)
	for _, f := range fs {
		expr := "v." + f.sf.Name
		code, err := g.encodeValue(expr, f.sf.Type, 1)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t.Name(), f.sf.Name, err)
		}
		key := fmt.Sprintf("e.Key(n, %q)\n", f.name)
		if !f.omitEmpty {
			g.b.WriteString(key + code)
			continue
		}
		var cond string
		switch f.sf.Type.Kind() {
		case reflect.String:
			cond = expr + ` != ""`
		case reflect.Bool:
			cond = expr
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			cond = expr + " != 0"
		case reflect.Pointer, reflect.Interface:
			cond = expr + " != nil"
		case reflect.Slice, reflect.Map:
			cond = "len(" + expr + ") != 0"
		case reflect.Struct:
			cond = "true" // encoding/json never omits a struct
		default:
			return fmt.Errorf("%s.%s: omitempty on %s", t.Name(), f.sf.Name, f.sf.Type)
		}
		fmt.Fprintf(&g.b, "if %s {\n%s%s}\n", cond, key, code)
	}
	g.b.WriteString("e.EndObject()\n}\n\n")
	return nil
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// encodeValue is the code that appends expr, of type t, as encoding/json does; depth names the
// loop variables of nested slices and maps.
func (g *generator) encodeValue(expr string, t reflect.Type, depth int) (string, error) {
	for _, m := range []reflect.Type{t, reflect.PointerTo(t)} {
		if m.Implements(marshalerType) || m.Implements(textMarshalerType) {
			return "", fmt.Errorf("%s marshals itself", t)
		}
	}
	switch t.Kind() {
	case reflect.String:
		return fmt.Sprintf("e.String(string(%s))\n", expr), nil
	case reflect.Bool:
		return fmt.Sprintf("e.Bool(bool(%s))\n", expr), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("e.Int(int64(%s))\n", expr), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("e.Uint(uint64(%s))\n", expr), nil
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return "", fmt.Errorf("interface %s with methods", t)
		}
		return fmt.Sprintf("e.any(%s)\n", expr), nil
	case reflect.Struct:
		if t.PkgPath() != "github.com/opencontainers/runtime-spec/specs-go" {
			return "", fmt.Errorf("struct %s outside the spec", t)
		}
		g.need(t)
		return fmt.Sprintf("append%s(e, &%s)\n", t.Name(), expr), nil
	case reflect.Pointer:
		inner, err := g.encodeValue("(*"+expr+")", t.Elem(), depth)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("if %s == nil {\ne.Null()\n} else {\n%s}\n", expr, inner), nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "", fmt.Errorf("%s: encoding/json writes it in base64", t)
		}
		i, a := fmt.Sprintf("i%d", depth), fmt.Sprintf("a%d", depth)
		inner, err := g.encodeValue(expr+"["+i+"]", t.Elem(), depth+1)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("if %s == nil {\ne.Null()\n} else {\n%s := e.Array()\nfor %s := range %s {\ne.Elem(%s)\n%s}\ne.EndArray()\n}\n",
			expr, a, i, expr, a, inner), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String || t.Key().PkgPath() != "" {
			return "", fmt.Errorf("map key %s is not string", t.Key())
		}
		// A map's values are not addressable: each is copied to m<depth> first.
		o, k, m := fmt.Sprintf("o%d", depth), fmt.Sprintf("k%d", depth), fmt.Sprintf("m%d", depth)
		inner, err := g.encodeValue(m, t.Elem(), depth+1)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("if %s == nil {\ne.Null()\n} else {\n%s := e.Object()\nfor _, %s := range sortedKeys(%s) {\ne.MapKey(%s, %s)\n%s := %s[%s]\n%s}\ne.EndObject()\n}\n",
			expr, o, k, expr, o, k, m, expr, k, inner), nil
	}
	return "", fmt.Errorf("kind %s is not generated", t.Kind())
}
