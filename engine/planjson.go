package engine

import (
	"fmt"
	"math"
	"strconv"

	"bulwark.dev/bulwark/internal/jsontext"
	"bulwark.dev/bulwark/internal/specjson"
	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// marshalPlan returns json.Marshal(p), the bytes of a container's plan.json and of a detached
// run's hand-over to its supervisor, encoded by hand (the effective spec by specjson): the first
// json.Marshal of a plan in a process built encoding/json's encoders of every type under it by
// reflection, ≈ 0.25 ms of CPU while the sandbox is created, when every CPU is busy with it.
// TestPlanJSONIsEncodingJSON checks the bytes against encoding/json, and fails when a field is
// added to a type under Plan until it is written here.
func marshalPlan(p *Plan) ([]byte, error) {
	spec, err := specjson.Encode(p.Spec)
	if err != nil {
		return nil, err
	}
	w := &planWriter{b: make([]byte, 0, 2048+len(spec))}
	w.b = append(w.b, `{"request":`...)
	w.request(p.Request)
	w.str("id", p.ID)
	w.key("image")
	w.image(&p.Image)
	w.key("effectiveSpec")
	w.b = append(w.b, spec...)
	w.key("raises")
	w.raises(p.Raises)
	w.key("decision")
	w.decision(&p.Decision)
	w.str("inputDigest", p.InputDigest)
	w.str("seccompProfile", p.SeccompProfile)
	w.key("seccomp")
	w.seccomp(p.Seccomp)
	w.key("network")
	w.networkFloor(&p.Network)
	if p.Egress != nil {
		w.key("egress")
		w.egress(p.Egress)
	}
	if p.Bandwidth != nil {
		w.key("bandwidth")
		w.b = append(w.b, '{')
		n := len(w.b)
		w.unumOmit(n, "ingressRate", p.Bandwidth.IngressRate)
		w.unumOmit(n, "ingressBurst", p.Bandwidth.IngressBurst)
		w.unumOmit(n, "egressRate", p.Bandwidth.EgressRate)
		w.unumOmit(n, "egressBurst", p.Bandwidth.EgressBurst)
		w.b = append(w.b, '}')
	}
	if p.Policy != (PolicySource{}) {
		w.key("policy")
		w.b = append(w.b, '{')
		n := len(w.b)
		w.strOmit(n, "dir", p.Policy.Dir)
		w.strOmit(n, "bundle", p.Policy.Bundle)
		w.b = append(w.b, '}')
	}
	if p.WritableRootSize != 0 {
		w.num("writableRootSize", p.WritableRootSize)
	}
	if len(p.BindSources) > 0 {
		w.key("bindSources")
		w.strs(p.BindSources)
	}
	w.b = append(w.b, '}')
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// planWriter appends a plan's JSON as encoding/json writes it: each struct's fields in their
// order, a nil slice or pointer as null, omitempty and omitzero fields left out as it leaves
// them out.
type planWriter struct {
	b   []byte
	err error
}

// key writes ,"name": after a member.
func (w *planWriter) key(name string) {
	w.b = append(w.b, ',', '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

// keyAt writes "name": as a member of the object opened at n: with a comma unless it is the
// first one.
func (w *planWriter) keyAt(n int, name string) {
	if len(w.b) > n {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

func (w *planWriter) str(name, v string) {
	w.key(name)
	w.b = jsontext.AppendString(w.b, v)
}

func (w *planWriter) num(name string, v int64) {
	w.key(name)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *planWriter) strOmit(n int, name, v string) {
	if v != "" {
		w.keyAt(n, name)
		w.b = jsontext.AppendString(w.b, v)
	}
}

func (w *planWriter) numOmit(n int, name string, v int64) {
	if v != 0 {
		w.keyAt(n, name)
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *planWriter) unumOmit(n int, name string, v uint64) {
	if v != 0 {
		w.keyAt(n, name)
		w.b = strconv.AppendUint(w.b, v, 10)
	}
}

func (w *planWriter) boolOmit(n int, name string, v bool) {
	if v {
		w.keyAt(n, name)
		w.b = append(w.b, "true"...)
	}
}

func (w *planWriter) strsOmit(n int, name string, v []string) {
	if len(v) > 0 {
		w.keyAt(n, name)
		w.strs(v)
	}
}

// strs writes a []string (nil: null).
func (w *planWriter) strs(v []string) {
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = jsontext.AppendString(w.b, s)
	}
	w.b = append(w.b, ']')
}

// int64Ptr writes a *int64 (nil: null).
func (w *planWriter) int64Ptr(v *int64) {
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = strconv.AppendInt(w.b, *v, 10)
}

// float writes f as encoding/json writes a float64: the shortest decimal that reads back as f,
// in exponent form below 1e-6 and from 1e21 on (its exponent without a leading zero); NaN and
// the infinities are an error.
func (w *planWriter) float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		w.err = fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	w.b = strconv.AppendFloat(w.b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(w.b); n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
}

// request writes a *Request (nil: null).
func (w *planWriter) request(r *Request) {
	if r == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '{')
	n := len(w.b)
	w.strOmit(n, "id", r.ID)
	w.keyAt(n, "identity")
	w.b = append(w.b, `{"uid":`...)
	w.b = strconv.AppendInt(w.b, int64(r.Identity.UID), 10)
	w.num("gid", int64(r.Identity.GID))
	if r.Identity.Principal != "" {
		w.str("principal", r.Identity.Principal)
	}
	w.b = append(w.b, '}')
	w.str("tenant", r.Tenant)
	w.str("image", r.Image)
	w.strsOmit(n, "args", r.Args)
	w.strsOmit(n, "entrypoint", r.Entrypoint)
	w.strsOmit(n, "env", r.Env)
	w.strOmit(n, "workdir", r.Workdir)
	w.strOmit(n, "user", r.User)
	w.strOmit(n, "hostname", r.Hostname)
	w.strOmit(n, "name", r.Name)
	w.strsOmit(n, "capAdd", r.CapAdd)
	w.strsOmit(n, "capDrop", r.CapDrop)
	w.numOmit(n, "memory", r.Memory)
	w.numOmit(n, "pidsLimit", r.PidsLimit)
	if r.CPUs != 0 {
		w.keyAt(n, "cpus")
		w.float(r.CPUs)
	}
	w.strsOmit(n, "tmpfs", r.Tmpfs)
	w.strsOmit(n, "volumes", r.Volumes)
	w.strsOmit(n, "mounts", r.Mounts)
	w.strOmit(n, "seccomp", r.Seccomp)
	w.strsOmit(n, "ulimits", r.Ulimits)
	w.strOmit(n, "network", r.Network)
	w.strsOmit(n, "publish", r.Publish)
	w.boolOmit(n, "publishAll", r.PublishAll)
	w.strsOmit(n, "egress", r.Egress)
	w.strOmit(n, "networkRate", r.NetworkRate)
	w.strsOmit(n, "networkAliases", r.NetworkAliases)
	if len(r.Annotations) > 0 {
		w.keyAt(n, "annotations")
		w.b = jsontext.AppendStringMap(w.b, r.Annotations)
	}
	w.boolOmit(n, "writableRoot", r.WritableRoot)
	w.boolOmit(n, "tty", r.TTY)
	w.unumOmit(n, "ttyRows", uint64(r.TTYRows))
	w.unumOmit(n, "ttyCols", uint64(r.TTYCols))
	w.boolOmit(n, "remove", r.Remove)
	w.boolOmit(n, "detach", r.Detach)
	w.strOmit(n, "restart", r.Restart)
	w.numOmit(n, "logMaxSize", r.LogMaxSize)
	w.numOmit(n, "logMaxFiles", int64(r.LogMaxFiles))
	w.boolOmit(n, "privileged", r.Privileged)
	w.boolOmit(n, "dryRun", r.DryRun)
	w.b = append(w.b, '}')
}

func (w *planWriter) image(i *ImageRef) {
	w.b = append(w.b, `{"reference":`...)
	w.b = jsontext.AppendString(w.b, i.Reference)
	w.str("digest", i.Digest)
	if len(i.Layers) > 0 {
		w.key("layers")
		w.strs(i.Layers)
	}
	w.b = append(w.b, '}')
}

func (w *planWriter) raises(rs []sandbox.Raise) {
	if rs == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i := range rs {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, `{"field":`...)
		w.b = jsontext.AppendString(w.b, rs[i].Field)
		w.str("from", rs[i].From)
		w.str("to", rs[i].To)
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ']')
}

func (w *planWriter) decision(d *document.Decision) {
	w.b = append(w.b, `{"allow":`...)
	w.b = strconv.AppendBool(w.b, d.Allow)
	w.key("reasons")
	if d.Reasons == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, '[')
		for i, r := range d.Reasons {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, `{"code":`...)
			w.b = jsontext.AppendString(w.b, r.Code)
			w.str("message", r.Message)
			w.str("path", r.Path)
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	w.key("constraints")
	c := &d.Constraints
	w.b = append(w.b, '{')
	n := len(w.b)
	if c.MaxMemory != nil {
		w.keyAt(n, "maxMemory")
		w.int64Ptr(c.MaxMemory)
	}
	if c.MaxPids != nil {
		w.keyAt(n, "maxPids")
		w.int64Ptr(c.MaxPids)
	}
	// omitzero: an empty list is written, nil alone is left out.
	if c.Capabilities != nil {
		w.keyAt(n, "capabilities")
		w.strs(c.Capabilities)
	}
	if c.Egress != nil {
		w.keyAt(n, "egress")
		w.strs(c.Egress)
	}
	if c.MaxNetworkRate != nil {
		w.keyAt(n, "maxNetworkRate")
		w.int64Ptr(c.MaxNetworkRate)
	}
	if q := c.Quotas; q != nil {
		w.keyAt(n, "quotas")
		w.b = append(w.b, `{"containers":`...)
		w.int64Ptr(q.Containers)
		w.key("memory")
		w.int64Ptr(q.Memory)
		w.key("pids")
		w.int64Ptr(q.Pids)
		w.key("nanoCPUs")
		w.int64Ptr(q.NanoCPUs)
		w.key("imagesSize")
		w.int64Ptr(q.ImagesSize)
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, '}')
	w.str("revision", d.Revision)
	w.num("durationNs", int64(d.Duration))
	w.b = append(w.b, '}')
}

func (w *planWriter) seccomp(ps []sandbox.SeccompProgram) {
	if ps == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i := range ps {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, `{"source":`...)
		w.b = jsontext.AppendString(w.b, ps[i].Source)
		w.str("digest", ps[i].Digest)
		w.str("defaultAction", ps[i].DefaultAction)
		w.num("rules", int64(ps[i].Rules))
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ']')
}

func (w *planWriter) networkFloor(f *sandbox.NetworkFloor) {
	w.b = append(w.b, `{"namespace":`...)
	w.b = jsontext.AppendString(w.b, f.Namespace)
	w.str("tcp", f.TCP)
	w.key("refusedSockets")
	if f.RefusedSockets == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, '[')
		for i, s := range f.RefusedSockets {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, `{"errno":`...)
			w.b = jsontext.AppendString(w.b, s.Errno)
			w.str("reason", s.Reason)
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
}

func (w *planWriter) egress(e *network.Egress) {
	w.b = append(w.b, `{"mode":`...)
	w.b = jsontext.AppendString(w.b, e.Mode)
	if len(e.Allow) > 0 {
		w.key("allow")
		w.b = append(w.b, '[')
		for i, r := range e.Allow {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			// encoding/json writes a TextMarshaler as the string of its text.
			cidr, err := r.CIDR.MarshalText()
			if err != nil {
				w.err = err
				return
			}
			w.b = append(w.b, `{"cidr":`...)
			w.b = jsontext.AppendString(w.b, string(cidr))
			if r.Protocol != "" {
				w.str("protocol", r.Protocol)
			}
			if r.FromPort != 0 {
				w.num("fromPort", int64(r.FromPort))
			}
			if r.ToPort != 0 {
				w.num("toPort", int64(r.ToPort))
			}
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
}
