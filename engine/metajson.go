package engine

import (
	"bytes"
	"encoding/json"

	"bulwark.dev/bulwark/internal/jsontext"
)

// marshalMeta returns json.MarshalIndent(m, "", "  "), the bytes of a container's meta.json,
// encoded by hand (appendJSON) and indented by encoding/json's scanner: encoding/json's first
// Marshal of a Meta in a process builds its encoders by reflection, ≈ 0.15 ms of a run's path
// before its sandbox is created (the record that claims the name is written there).
func marshalMeta(m *Meta) ([]byte, error) {
	b, err := m.appendJSON(make([]byte, 0, 640))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/2)
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// appendJSON appends m as json.Marshal writes it: the same fields, order and omissions (checked
// by TestMetaJSONIsEncodingJSON, which also fails when a field is added to Meta or below it).
func (m *Meta) appendJSON(b []byte) ([]byte, error) {
	w := &jsontext.Writer{B: b}
	n := w.Object()
	w.Key(n, "id")
	w.String(m.ID)
	stringOmit(w, n, "name", m.Name)
	w.Key(n, "tenant")
	w.String(m.Tenant)
	w.Key(n, "uid")
	w.Int(int64(m.UID))
	w.Key(n, "requestId")
	w.String(m.RequestID)
	w.Key(n, "image")
	writeImage(w, &m.Image)
	w.Key(n, "args")
	w.Strings(m.Args)
	w.Key(n, "created")
	w.Time(m.Created)
	if !m.Started.IsZero() {
		w.Key(n, "started")
		w.Time(m.Started)
	}
	intOmit(w, n, "pid", int64(m.Pid))
	uintOmit(w, n, "pidStart", m.PidStart)
	if m.Client != nil {
		w.Key(n, "client")
		c := w.Object()
		w.Key(c, "pid")
		w.Int(int64(m.Client.Pid))
		w.Key(c, "start")
		w.Uint(m.Client.Start)
		w.EndObject()
	}
	w.Key(n, "detached")
	w.Bool(m.Detached)
	w.Key(n, "autoRemove")
	w.Bool(m.Remove)
	intOmit(w, n, "logMaxFiles", int64(m.LogMaxFiles))
	intOmit(w, n, "logMaxSize", m.LogMaxSize)
	if m.Restart != (RestartPolicy{}) {
		w.Key(n, "restart")
		r := w.Object()
		stringOmit(w, r, "name", m.Restart.Name)
		intOmit(w, r, "maxRetries", int64(m.Restart.MaxRetries))
		w.EndObject()
	}
	intOmit(w, n, "restartCount", int64(m.RestartCount))
	if m.Policy != (PolicySource{}) {
		w.Key(n, "policy")
		p := w.Object()
		stringOmit(w, p, "dir", m.Policy.Dir)
		stringOmit(w, p, "bundle", m.Policy.Bundle)
		w.EndObject()
	}
	if r := m.Resources; r != nil {
		w.Key(n, "resources")
		o := w.Object()
		w.Key(o, "memory")
		w.Int(r.Memory)
		w.Key(o, "pids")
		w.Int(r.Pids)
		w.Key(o, "nanoCPUs")
		w.Int(r.NanoCPUs)
		w.EndObject()
	}
	if x := m.Exit; x != nil {
		w.Key(n, "exit")
		o := w.Object()
		w.Key(o, "code")
		w.Int(int64(x.Code))
		stringOmit(w, o, "signal", x.Signal)
		w.Key(o, "durationNs")
		w.Int(int64(x.Duration))
		w.Key(o, "peakMemory")
		w.Uint(x.PeakMemory)
		w.Key(o, "oomKilled")
		w.Bool(x.OOMKilled)
		w.Key(o, "finished")
		w.Time(x.Finished)
		stringOmit(w, o, "error", x.Error)
		w.EndObject()
	}
	w.EndObject()
	return w.Bytes()
}
