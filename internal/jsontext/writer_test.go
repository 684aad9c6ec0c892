package jsontext

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"bulwark.dev/bulwark/internal/jsontext/encodertest"
)

// sample has a field of every kind Writer writes.
type sample struct {
	S  string            `json:"s"`
	SO string            `json:"so,omitempty"`
	B  bool              `json:"b"`
	I  int64             `json:"i"`
	U  uint64            `json:"u"`
	F  float64           `json:"f"`
	T  time.Time         `json:"t"`
	SS []string          `json:"ss"`
	M  map[string]string `json:"m"`
	P  *int64            `json:"p"`
	N  []inner           `json:"n"`
}

type inner struct {
	A string `json:"a"`
	C []bool `json:"c,omitempty"`
}

// writeSample is sample's encoder, written with a Writer as the encoders it serves are.
func writeSample(w *Writer, v *sample) {
	n := w.Object()
	w.Key(n, "s")
	w.String(v.S)
	if v.SO != "" {
		w.Key(n, "so")
		w.String(v.SO)
	}
	w.Key(n, "b")
	w.Bool(v.B)
	w.Key(n, "i")
	w.Int(v.I)
	w.Key(n, "u")
	w.Uint(v.U)
	w.Key(n, "f")
	w.Float(v.F)
	w.Key(n, "t")
	w.Time(v.T)
	w.Key(n, "ss")
	w.Strings(v.SS)
	w.Key(n, "m")
	w.StringMap(v.M)
	w.Key(n, "p")
	if v.P == nil {
		w.Null()
	} else {
		w.Int(*v.P)
	}
	w.Key(n, "n")
	if v.N == nil {
		w.Null()
	} else {
		a := w.Array()
		for i := range v.N {
			w.Elem(a)
			m := w.Object()
			w.Key(m, "a")
			w.String(v.N[i].A)
			if len(v.N[i].C) > 0 {
				w.Key(m, "c")
				raw, _ := json.Marshal(v.N[i].C)
				w.Raw(raw)
			}
			w.EndObject()
		}
		w.EndArray()
	}
	w.EndObject()
}

// TestWriterIsEncodingJSON: what a Writer writes is json.Marshal's bytes, for random values of
// every kind it writes (encodertest.Fill) and the floats at the edges of either form.
func TestWriterIsEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(5))
	values := []sample{{}}
	for _, f := range []float64{1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 123456789e13, -1e-9, 5e-324, math.MaxFloat64, -0.0} {
		values = append(values, sample{F: f})
	}
	for range 3000 {
		var v sample
		encodertest.Fill(t, rnd, reflect.ValueOf(&v).Elem())
		values = append(values, v)
	}
	for _, v := range values {
		want, err := json.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		w := &Writer{}
		writeSample(w, &v)
		got, err := w.Bytes()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Writer\n%s (%v)\njson.Marshal\n%s", got, err, want)
		}
	}
}

// What encoding/json cannot write fails the writer with its first failure: a float that is not a
// number or infinite, a time past the year 9999.
func TestWriterFails(t *testing.T) {
	for _, v := range []sample{{F: math.NaN()}, {F: math.Inf(-1)}, {T: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		if _, werr := json.Marshal(&v); werr == nil {
			t.Fatalf("json.Marshal(%+v) did not fail", v)
		}
		w := &Writer{}
		writeSample(w, &v)
		if b, err := w.Bytes(); err == nil || b != nil {
			t.Errorf("%+v: %q, %v; want a failure", v, b, err)
		}
	}
	w := &Writer{}
	w.Float(math.NaN())
	w.Time(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := w.Bytes(); err == nil || err.Error() != "json: unsupported value: NaN" {
		t.Errorf("failure %v, want the first", err)
	}
}
