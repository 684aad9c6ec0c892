package engine

import (
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
	w := &jsontext.Writer{B: make([]byte, 0, 2048+len(spec))}
	n := w.Object()
	w.Key(n, "request")
	writeRequest(w, p.Request)
	w.Key(n, "id")
	w.String(p.ID)
	w.Key(n, "image")
	writeImage(w, &p.Image)
	w.Key(n, "effectiveSpec")
	w.Raw(spec)
	w.Key(n, "raises")
	writeRaises(w, p.Raises)
	w.Key(n, "decision")
	writeDecision(w, &p.Decision)
	w.Key(n, "inputDigest")
	w.String(p.InputDigest)
	w.Key(n, "seccompProfile")
	w.String(p.SeccompProfile)
	w.Key(n, "seccomp")
	writeSeccomp(w, p.Seccomp)
	w.Key(n, "network")
	writeNetworkFloor(w, &p.Network)
	if p.Egress != nil {
		w.Key(n, "egress")
		writeEgress(w, p.Egress)
	}
	if p.Bandwidth != nil {
		w.Key(n, "bandwidth")
		m := w.Object()
		uintOmit(w, m, "ingressRate", p.Bandwidth.IngressRate)
		uintOmit(w, m, "ingressBurst", p.Bandwidth.IngressBurst)
		uintOmit(w, m, "egressRate", p.Bandwidth.EgressRate)
		uintOmit(w, m, "egressBurst", p.Bandwidth.EgressBurst)
		w.EndObject()
	}
	if p.Policy != (PolicySource{}) {
		w.Key(n, "policy")
		m := w.Object()
		stringOmit(w, m, "dir", p.Policy.Dir)
		stringOmit(w, m, "bundle", p.Policy.Bundle)
		w.EndObject()
	}
	intOmit(w, n, "writableRootSize", p.WritableRootSize)
	stringsOmit(w, n, "bindSources", p.BindSources)
	w.EndObject()
	return w.Bytes()
}

// The members encoding/json leaves out when they are empty (omitempty), in the object whose mark
// is n.

func stringOmit(w *jsontext.Writer, n int, name, v string) {
	if v != "" {
		w.Key(n, name)
		w.String(v)
	}
}

func intOmit(w *jsontext.Writer, n int, name string, v int64) {
	if v != 0 {
		w.Key(n, name)
		w.Int(v)
	}
}

func uintOmit(w *jsontext.Writer, n int, name string, v uint64) {
	if v != 0 {
		w.Key(n, name)
		w.Uint(v)
	}
}

func boolOmit(w *jsontext.Writer, n int, name string, v bool) {
	if v {
		w.Key(n, name)
		w.Bool(true)
	}
}

func stringsOmit(w *jsontext.Writer, n int, name string, v []string) {
	if len(v) > 0 {
		w.Key(n, name)
		w.Strings(v)
	}
}

// int64Ptr writes a *int64 (nil: null).
func int64Ptr(w *jsontext.Writer, v *int64) {
	if v == nil {
		w.Null()
		return
	}
	w.Int(*v)
}

// writeRequest writes a *Request (nil: null).
func writeRequest(w *jsontext.Writer, r *Request) {
	if r == nil {
		w.Null()
		return
	}
	n := w.Object()
	stringOmit(w, n, "id", r.ID)
	w.Key(n, "identity")
	m := w.Object()
	w.Key(m, "uid")
	w.Int(int64(r.Identity.UID))
	w.Key(m, "gid")
	w.Int(int64(r.Identity.GID))
	stringOmit(w, m, "principal", r.Identity.Principal)
	w.EndObject()
	w.Key(n, "tenant")
	w.String(r.Tenant)
	w.Key(n, "image")
	w.String(r.Image)
	stringsOmit(w, n, "args", r.Args)
	stringsOmit(w, n, "entrypoint", r.Entrypoint)
	stringsOmit(w, n, "env", r.Env)
	stringOmit(w, n, "workdir", r.Workdir)
	stringOmit(w, n, "user", r.User)
	stringOmit(w, n, "hostname", r.Hostname)
	stringOmit(w, n, "name", r.Name)
	stringsOmit(w, n, "capAdd", r.CapAdd)
	stringsOmit(w, n, "capDrop", r.CapDrop)
	intOmit(w, n, "memory", r.Memory)
	intOmit(w, n, "pidsLimit", r.PidsLimit)
	if r.CPUs != 0 {
		w.Key(n, "cpus")
		w.Float(r.CPUs)
	}
	stringsOmit(w, n, "tmpfs", r.Tmpfs)
	stringsOmit(w, n, "volumes", r.Volumes)
	stringsOmit(w, n, "mounts", r.Mounts)
	stringOmit(w, n, "seccomp", r.Seccomp)
	stringsOmit(w, n, "ulimits", r.Ulimits)
	stringOmit(w, n, "network", r.Network)
	stringsOmit(w, n, "publish", r.Publish)
	boolOmit(w, n, "publishAll", r.PublishAll)
	stringsOmit(w, n, "egress", r.Egress)
	stringOmit(w, n, "networkRate", r.NetworkRate)
	stringsOmit(w, n, "networkAliases", r.NetworkAliases)
	if len(r.Annotations) > 0 {
		w.Key(n, "annotations")
		w.StringMap(r.Annotations)
	}
	boolOmit(w, n, "writableRoot", r.WritableRoot)
	boolOmit(w, n, "tty", r.TTY)
	uintOmit(w, n, "ttyRows", uint64(r.TTYRows))
	uintOmit(w, n, "ttyCols", uint64(r.TTYCols))
	boolOmit(w, n, "remove", r.Remove)
	boolOmit(w, n, "detach", r.Detach)
	stringOmit(w, n, "restart", r.Restart)
	intOmit(w, n, "logMaxSize", r.LogMaxSize)
	intOmit(w, n, "logMaxFiles", int64(r.LogMaxFiles))
	boolOmit(w, n, "privileged", r.Privileged)
	boolOmit(w, n, "dryRun", r.DryRun)
	w.EndObject()
}

func writeImage(w *jsontext.Writer, i *ImageRef) {
	n := w.Object()
	w.Key(n, "reference")
	w.String(i.Reference)
	w.Key(n, "digest")
	w.String(i.Digest)
	stringsOmit(w, n, "layers", i.Layers)
	w.EndObject()
}

func writeRaises(w *jsontext.Writer, rs []sandbox.Raise) {
	if rs == nil {
		w.Null()
		return
	}
	a := w.Array()
	for i := range rs {
		w.Elem(a)
		n := w.Object()
		w.Key(n, "field")
		w.String(rs[i].Field)
		w.Key(n, "from")
		w.String(rs[i].From)
		w.Key(n, "to")
		w.String(rs[i].To)
		w.EndObject()
	}
	w.EndArray()
}

func writeDecision(w *jsontext.Writer, d *document.Decision) {
	n := w.Object()
	w.Key(n, "allow")
	w.Bool(d.Allow)
	w.Key(n, "reasons")
	if d.Reasons == nil {
		w.Null()
	} else {
		a := w.Array()
		for _, r := range d.Reasons {
			w.Elem(a)
			m := w.Object()
			w.Key(m, "code")
			w.String(r.Code)
			w.Key(m, "message")
			w.String(r.Message)
			w.Key(m, "path")
			w.String(r.Path)
			w.EndObject()
		}
		w.EndArray()
	}
	w.Key(n, "constraints")
	c := &d.Constraints
	m := w.Object()
	if c.MaxMemory != nil {
		w.Key(m, "maxMemory")
		int64Ptr(w, c.MaxMemory)
	}
	if c.MaxPids != nil {
		w.Key(m, "maxPids")
		int64Ptr(w, c.MaxPids)
	}
	// omitzero: an empty list is written, nil alone is left out.
	if c.Capabilities != nil {
		w.Key(m, "capabilities")
		w.Strings(c.Capabilities)
	}
	if c.Egress != nil {
		w.Key(m, "egress")
		w.Strings(c.Egress)
	}
	if c.MaxNetworkRate != nil {
		w.Key(m, "maxNetworkRate")
		int64Ptr(w, c.MaxNetworkRate)
	}
	if q := c.Quotas; q != nil {
		w.Key(m, "quotas")
		o := w.Object()
		w.Key(o, "containers")
		int64Ptr(w, q.Containers)
		w.Key(o, "memory")
		int64Ptr(w, q.Memory)
		w.Key(o, "pids")
		int64Ptr(w, q.Pids)
		w.Key(o, "nanoCPUs")
		int64Ptr(w, q.NanoCPUs)
		w.Key(o, "imagesSize")
		int64Ptr(w, q.ImagesSize)
		w.EndObject()
	}
	w.EndObject()
	w.Key(n, "revision")
	w.String(d.Revision)
	w.Key(n, "durationNs")
	w.Int(int64(d.Duration))
	w.EndObject()
}

func writeSeccomp(w *jsontext.Writer, ps []sandbox.SeccompProgram) {
	if ps == nil {
		w.Null()
		return
	}
	a := w.Array()
	for i := range ps {
		w.Elem(a)
		n := w.Object()
		w.Key(n, "source")
		w.String(ps[i].Source)
		w.Key(n, "digest")
		w.String(ps[i].Digest)
		w.Key(n, "defaultAction")
		w.String(ps[i].DefaultAction)
		w.Key(n, "rules")
		w.Int(int64(ps[i].Rules))
		w.EndObject()
	}
	w.EndArray()
}

func writeNetworkFloor(w *jsontext.Writer, f *sandbox.NetworkFloor) {
	n := w.Object()
	w.Key(n, "namespace")
	w.String(f.Namespace)
	w.Key(n, "tcp")
	w.String(f.TCP)
	w.Key(n, "refusedSockets")
	if f.RefusedSockets == nil {
		w.Null()
	} else {
		a := w.Array()
		for _, s := range f.RefusedSockets {
			w.Elem(a)
			m := w.Object()
			w.Key(m, "errno")
			w.String(s.Errno)
			w.Key(m, "reason")
			w.String(s.Reason)
			w.EndObject()
		}
		w.EndArray()
	}
	w.EndObject()
}

func writeEgress(w *jsontext.Writer, e *network.Egress) {
	n := w.Object()
	w.Key(n, "mode")
	w.String(e.Mode)
	if len(e.Allow) > 0 {
		w.Key(n, "allow")
		a := w.Array()
		for _, r := range e.Allow {
			w.Elem(a)
			// encoding/json writes a TextMarshaler as the string of its text.
			cidr, err := r.CIDR.MarshalText()
			if err != nil {
				w.Fail(err)
				return
			}
			m := w.Object()
			w.Key(m, "cidr")
			w.String(string(cidr))
			stringOmit(w, m, "protocol", r.Protocol)
			intOmit(w, m, "fromPort", int64(r.FromPort))
			intOmit(w, m, "toPort", int64(r.ToPort))
			w.EndObject()
		}
		w.EndArray()
	}
	w.EndObject()
}
