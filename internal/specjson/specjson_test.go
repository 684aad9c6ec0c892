package specjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// check fails t unless data decodes as encoding/json decodes it, as a spec and as a process alone:
// the generated decoder accepts only what json.Unmarshal accepts, to the same value, and Decode
// gives json.Unmarshal's value or error. It reports whether the generated decoder took the
// document as a spec.
func check(t *testing.T, data []byte) bool {
	t.Helper()
	checkAs(t, data, decodeProcess, DecodeProcess)
	return checkAs(t, data, decodeSpec, Decode)
}

func checkAs[T any](t *testing.T, data []byte, dec func(*decoder, *T) bool, public func([]byte) (*T, error)) bool {
	t.Helper()
	var want T
	wantErr := json.Unmarshal(data, &want)
	fast, ok := decodeFast(data, dec)
	if ok && (wantErr != nil || !reflect.DeepEqual(fast, &want)) {
		t.Fatalf("generated decoder took %q\nas   %+v\njson %+v (%v)", data, fast, &want, wantErr)
	}
	got, err := public(data)
	switch {
	case wantErr != nil:
		if err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("Decode(%q): error %v, json's %v", data, err, wantErr)
		}
	case err != nil || !reflect.DeepEqual(got, &want):
		t.Fatalf("Decode(%q) = %+v, %v; json %+v", data, got, err, &want)
	}
	return ok
}

// Plain specs — every field of every type filled at random, as encoding/json writes them — are
// all the generated decoder's, to the spec json.Unmarshal makes; an interface value (Windows'
// credentialSpec) is left to encoding/json.
func TestPlainSpecsDecodedWithoutReflection(t *testing.T) {
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 1))
		var s specs.Spec
		fill(r, reflect.ValueOf(&s).Elem(), 0)
		withIface := s.Windows != nil && s.Windows.CredentialSpec != nil
		for _, indent := range []bool{false, true} {
			data, err := json.Marshal(&s)
			if indent {
				data, err = json.MarshalIndent(&s, "", "\t")
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok := check(t, data); ok == withIface {
				t.Fatalf("seed %d: generated decoder took it: %v (credentialSpec set: %v)", seed, ok, withIface)
			}
		}
		if s.Process != nil {
			data, err := json.Marshal(s.Process)
			if err != nil {
				t.Fatal(err)
			}
			if !checkAs(t, data, decodeProcess, DecodeProcess) {
				t.Fatalf("seed %d: process left to encoding/json", seed)
			}
		}
	}
}

// The bundles runc writes and a Docker-like one, and an effective spec as the runtime keeps it
// for exec (spec.json), are the generated decoder's.
func TestKnownBundles(t *testing.T) {
	for _, name := range []string{"runc.json", "docker.json", "effective.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !check(t, data) {
			t.Fatalf("%s: left to encoding/json", name)
		}
	}
}

// Mutated documents — keys in other cases or folding to a field's name (K, ſ), keys twice,
// unknown keys with any value, nulls, values of another kind, numbers out of range or with a
// fraction, strings with escapes, surrogates and invalid UTF-8, other whitespace, truncations —
// decode as encoding/json decodes them, whichever decoder takes them.
func TestMutatedSpecsMatchJSON(t *testing.T) {
	fastCount, n := 0, 0
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 2))
		var s specs.Spec
		fill(r, reflect.ValueOf(&s).Elem(), 0)
		var v any = &s
		if seed%2 == 1 && s.Process != nil {
			v = s.Process // run with --process: a process document alone
		}
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		doc := parse(t, data)
		for range 1 + r.IntN(2) {
			mutate(r, doc)
		}
		var b bytes.Buffer
		write(r, &b, doc)
		out := b.Bytes()
		switch r.IntN(20) {
		case 0:
			out = out[:r.IntN(len(out))]
		case 1:
			out = append(out, " x"[r.IntN(2):]...)
		}
		if check(t, out) {
			fastCount++
		}
		n++
	}
	t.Logf("%d of %d mutated documents decoded without reflection", fastCount, n)
}

// The fuzzer's documents decode as encoding/json decodes them.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"runc.json", "docker.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{`{}`, `null`, ``, `{"process":{"args":["a\u00e9\ud83d\ude00"]}}`,
		`{"ociVersion":"1","OCIVERSION":"2"}`, `{"linux":{"uidMappings":[{"size":4294967296}]}}`,
		`{"process":{"user":{"uid":1.0}}}`, `{"\u212aind":1}`, `{"x":[[[{"y":null}]]]}`, `{"process":null,"root":{"path":"\ud800"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}

// fill sets v to random values: every struct field, pointers and containers sometimes nil or
// empty, strings with characters JSON escapes, integers across their range.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fill(r, f, depth+1)
			}
		}
	case reflect.Pointer:
		if r.IntN(4) > 0 && depth < 12 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(r, v.Elem(), depth+1)
		}
	case reflect.Slice:
		switch k := r.IntN(6); {
		case k == 0 || depth > 12:
		case k == 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := r.IntN(3) + 1
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fill(r, v.Index(i), depth+1)
			}
		}
	case reflect.Map:
		switch k := r.IntN(6); {
		case k == 0 || depth > 12:
		case k == 1:
			v.Set(reflect.MakeMap(v.Type()))
		default:
			v.Set(reflect.MakeMap(v.Type()))
			for range r.IntN(3) + 1 {
				key, val := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				fill(r, key, depth+1)
				fill(r, val, depth+1)
				v.SetMapIndex(key, val)
			}
		}
	case reflect.String:
		v.SetString(randString(r))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		switch r.IntN(4) {
		case 0:
			v.SetInt(-1 << (bits - 1))
		case 1:
			v.SetInt(1<<(bits-1) - 1)
		default:
			v.SetInt(r.Int64N(2001) - 1000)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		bits := v.Type().Bits()
		switch r.IntN(4) {
		case 0:
			v.SetUint(1<<bits - 1)
		default:
			v.SetUint(r.Uint64N(1000))
		}
	case reflect.Interface:
		if r.IntN(8) == 0 {
			v.Set(reflect.ValueOf(map[string]any{"a": "b"}))
		}
	}
}

var pieces = []string{"", "a", "rootfs", "/bin/sh", "CAP_SYS_ADMIN", "é", "日本", "😀", "<&>", `"`, `\`,
	"\t\n", "\b\f\r", "\x01", "\x1f", "\u2028", "\u2029", "\x7f", "K", "ſ", "\xff", "\xc3(", "\xed\xa0\x80", "\ufffd"}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(4) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// node is a JSON value as written, keys in order and duplicates kept.
type node struct {
	kind byte   // '{', '[', '"', '0' (number), 'l' (true, false, null)
	text string // a string's value, a number's or a literal's text
	raw  bool   // a string written unescaped as is (bytes JSON would not allow unescaped)
	keys []string
	vals []*node
}

func parse(t *testing.T, data []byte) *node {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var read func() *node
	read = func() *node {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case json.Delim:
			n := &node{kind: byte(tok)}
			for dec.More() {
				if tok == '{' {
					k, err := dec.Token()
					if err != nil {
						t.Fatal(err)
					}
					n.keys = append(n.keys, k.(string))
				}
				n.vals = append(n.vals, read())
			}
			if _, err := dec.Token(); err != nil {
				t.Fatal(err)
			}
			return n
		case string:
			return &node{kind: '"', text: tok}
		case json.Number:
			return &node{kind: '0', text: tok.String()}
		case nil:
			return &node{kind: 'l', text: "null"}
		default:
			return &node{kind: 'l', text: fmt.Sprint(tok)}
		}
	}
	return read()
}

// walk returns every container node of n.
func walk(n *node, out []*node) []*node {
	if n.kind == '{' || n.kind == '[' {
		out = append(out, n)
	}
	for _, v := range n.vals {
		out = walk(v, out)
	}
	return out
}

var oddValues = []string{`null`, `"1"`, `1`, `-1`, `0`, `-0`, `1.0`, `1e2`, `1E0`, `0.5`, `true`, `false`, `{}`, `[]`,
	`[null]`, `{"a":null}`, `"\ud800"`, `"\udc00\ud800"`, `"\ud83d\ude00"`, `"\u00e9"`, `18446744073709551615`,
	`18446744073709551616`, `4294967295`, `4294967296`, `65536`, `-9223372036854775808`, `-9223372036854775809`,
	`[[[[[]]]]]`, `{"x":{"y":[1,2,{"z":"w"}]}}`}

// mutate changes one random place of doc.
func mutate(r *rand.Rand, doc *node) {
	nodes := walk(doc, nil)
	if len(nodes) == 0 {
		return
	}
	n := nodes[r.IntN(len(nodes))]
	if len(n.vals) == 0 {
		n.vals = append(n.vals, &node{kind: 'l', text: "null"})
		if n.kind == '{' {
			n.keys = append(n.keys, "unknownKey")
		}
		return
	}
	i := r.IntN(len(n.vals))
	// Weighted towards changes the generated decoder takes, whose result is compared.
	switch []int{0, 0, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 7, 7, 7}[r.IntN(15)] {
	case 0: // another value of any kind
		var odd node
		odd.kind = 'j'
		odd.text = oddValues[r.IntN(len(oddValues))]
		n.vals[i] = &odd
	case 1:
		n.vals[i] = &node{kind: 'l', text: "null"}
	case 2: // a key given twice
		if n.kind == '{' {
			j := r.IntN(len(n.vals))
			n.keys = append(n.keys, n.keys[i])
			n.vals = append(n.vals, n.vals[j])
		}
	case 3: // a key in another case, or folding to a field's name
		if n.kind == '{' && n.keys[i] != "" {
			k := []rune(n.keys[i])
			switch p := r.IntN(len(k)); {
			case k[p] == 'k' || k[p] == 'K':
				k[p] = 'K'
			case k[p] == 's' || k[p] == 'S':
				k[p] = 'ſ'
			case 'a' <= k[p] && k[p] <= 'z':
				k[p] -= 'a' - 'A'
			case 'A' <= k[p] && k[p] <= 'Z':
				k[p] += 'a' - 'A'
			}
			n.keys[i] = string(k)
		}
	case 4: // an unknown key
		if n.kind == '{' {
			n.keys = append(n.keys, []string{"x-unknown", "Future", ""}[r.IntN(3)])
			n.vals = append(n.vals, &node{kind: 'j', text: oddValues[r.IntN(len(oddValues))]})
		}
	case 5: // invalid UTF-8 or a raw control character in a string
		if v := n.vals[i]; v.kind == '"' {
			v.text += []string{"\xff", "\xc3", "\x00", "\n", "é"}[r.IntN(5)]
			v.raw = true
		}
	case 6: // a number another way
		if v := n.vals[i]; v.kind == '0' {
			v.text = []string{v.text + ".0", v.text + "e0", "-" + v.text, v.text + "0000000000"}[r.IntN(4)]
		}
	default: // nested elements changed in turn
		mutate(r, n.vals[i])
	}
}

// write writes n with random whitespace and random (valid) ways of escaping its strings.
func write(r *rand.Rand, b *bytes.Buffer, n *node) {
	space := func() {
		if r.IntN(8) == 0 {
			b.WriteString([]string{" ", "\n\t", "\r\n  "}[r.IntN(3)])
		}
	}
	space()
	switch n.kind {
	case '{', '[':
		b.WriteByte(n.kind)
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			if n.kind == '{' {
				// A key written with escapes is left to encoding/json: only now and then.
				writeString(r, b, n.keys[i], false, r.IntN(400) == 0)
				space()
				b.WriteByte(':')
			}
			write(r, b, v)
		}
		space()
		b.WriteByte(map[byte]byte{'{': '}', '[': ']'}[n.kind])
	case '"':
		writeString(r, b, n.text, n.raw, r.IntN(2) == 0)
	default:
		b.WriteString(n.text)
	}
	space()
}

// writeString writes s as JSON: as json.Marshal does, or (escape) with every non-ASCII
// character (or every character) as a \u escape, surrogate pairs included; raw writes s's bytes
// unescaped.
func writeString(r *rand.Rand, b *bytes.Buffer, s string, raw, escape bool) {
	switch {
	case raw:
		b.WriteString(`"` + s + `"`)
	case !escape:
		q, _ := json.Marshal(s)
		b.Write(q)
	default:
		all := r.IntN(2) == 0
		b.WriteByte('"')
		for _, c := range s {
			switch {
			case c < 0x80 && !all && c >= 0x20 && c != '"' && c != '\\':
				b.WriteRune(c)
			case c >= 0x10000:
				c -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04X`, 0xD800+(c>>10), 0xDC00+(c&0x3FF))
			default:
				fmt.Fprintf(b, `\u%04x`, c)
			}
		}
		b.WriteByte('"')
	}
}
