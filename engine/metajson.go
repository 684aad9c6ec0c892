package engine

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

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
	key := func(name string) {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	str := func(name, v string) {
		key(name)
		b = jsontext.AppendString(b, v)
	}
	num := func(name string, v int64) {
		key(name)
		b = strconv.AppendInt(b, v, 10)
	}
	unum := func(name string, v uint64) {
		key(name)
		b = strconv.AppendUint(b, v, 10)
	}
	boolean := func(name string, v bool) {
		key(name)
		b = strconv.AppendBool(b, v)
	}
	var err error
	at := func(name string, t time.Time) {
		key(name)
		var tb []byte
		if tb, err = t.MarshalJSON(); err == nil {
			b = append(b, tb...)
		}
	}
	strs := func(name string, v []string) {
		key(name)
		if v == nil {
			b = append(b, "null"...)
			return
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsontext.AppendString(b, s)
		}
		b = append(b, ']')
	}

	b = append(b, `{"id":`...)
	b = jsontext.AppendString(b, m.ID)
	if m.Name != "" {
		str("name", m.Name)
	}
	str("tenant", m.Tenant)
	num("uid", int64(m.UID))
	str("requestId", m.RequestID)
	b = append(b, `,"image":{"reference":`...)
	b = jsontext.AppendString(b, m.Image.Reference)
	str("digest", m.Image.Digest)
	if len(m.Image.Layers) > 0 {
		strs("layers", m.Image.Layers)
	}
	b = append(b, '}')
	strs("args", m.Args)
	at("created", m.Created)
	if !m.Started.IsZero() {
		at("started", m.Started)
	}
	if m.Pid != 0 {
		num("pid", int64(m.Pid))
	}
	if m.PidStart != 0 {
		unum("pidStart", m.PidStart)
	}
	if m.Client != nil {
		b = append(b, `,"client":{"pid":`...)
		b = strconv.AppendInt(b, int64(m.Client.Pid), 10)
		unum("start", m.Client.Start)
		b = append(b, '}')
	}
	boolean("detached", m.Detached)
	boolean("autoRemove", m.Remove)
	if m.LogMaxFiles != 0 {
		num("logMaxFiles", int64(m.LogMaxFiles))
	}
	if m.LogMaxSize != 0 {
		num("logMaxSize", m.LogMaxSize)
	}
	if m.Restart != (RestartPolicy{}) {
		b = append(b, `,"restart":{`...)
		sep := ""
		if m.Restart.Name != "" {
			b = append(b, `"name":`...)
			b = jsontext.AppendString(b, m.Restart.Name)
			sep = ","
		}
		if m.Restart.MaxRetries != 0 {
			b = append(b, sep+`"maxRetries":`...)
			b = strconv.AppendInt(b, int64(m.Restart.MaxRetries), 10)
		}
		b = append(b, '}')
	}
	if m.RestartCount != 0 {
		num("restartCount", int64(m.RestartCount))
	}
	if m.Policy != (PolicySource{}) {
		b = append(b, `,"policy":{`...)
		sep := ""
		if m.Policy.Dir != "" {
			b = append(b, `"dir":`...)
			b = jsontext.AppendString(b, m.Policy.Dir)
			sep = ","
		}
		if m.Policy.Bundle != "" {
			b = append(b, sep+`"bundle":`...)
			b = jsontext.AppendString(b, m.Policy.Bundle)
		}
		b = append(b, '}')
	}
	if r := m.Resources; r != nil {
		b = append(b, `,"resources":{"memory":`...)
		b = strconv.AppendInt(b, r.Memory, 10)
		num("pids", r.Pids)
		num("nanoCPUs", r.NanoCPUs)
		b = append(b, '}')
	}
	if x := m.Exit; x != nil {
		b = append(b, `,"exit":{"code":`...)
		b = strconv.AppendInt(b, int64(x.Code), 10)
		if x.Signal != "" {
			str("signal", x.Signal)
		}
		num("durationNs", int64(x.Duration))
		unum("peakMemory", x.PeakMemory)
		boolean("oomKilled", x.OOMKilled)
		at("finished", x.Finished)
		if x.Error != "" {
			str("error", x.Error)
		}
		b = append(b, '}')
	}
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}
