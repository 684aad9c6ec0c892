package policy

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts a Request to the AST value OPA evaluates, directly and without a JSON round
// trip (a round trip costs more than the whole default policy). The shape must equal the JSON
// encoding: TestToValueMatchesJSON compares both on the test corpus.
func (r *Request) toValue() ast.Value {
	items := [][2]*ast.Term{
		item("apiVersion", ast.StringTerm(r.APIVersion)),
		item("tenant", ast.StringTerm(r.Tenant)),
		item("identity", identityTerm(r.Identity)),
		item("operation", ast.StringTerm(string(r.Operation))),
		item("privileged", ast.BooleanTerm(r.Privileged)),
		item("process", processTerm(r.Process)),
		item("capabilities", stringsTerm(r.Capabilities)),
		item("mounts", mountsTerm(r.Mounts)),
		item("namespaces", namespacesTerm(r.Namespaces)),
		item("network", ast.ObjectTerm(item("mode", ast.StringTerm(r.Network.Mode)))),
		item("seccomp", ast.ObjectTerm(
			item("profile", ast.StringTerm(r.Seccomp.Profile)),
			item("digest", ast.StringTerm(r.Seccomp.Digest)),
			item("defaultAction", ast.StringTerm(r.Seccomp.DefaultAction)))),
		item("mac", macTerm(r.MAC)),
		item("rootfs", ast.ObjectTerm(item("readOnly", ast.BooleanTerm(r.Rootfs.ReadOnly)))),
		item("resources", resourcesTerm(r.Resources)),
		item("devices", devicesTerm(r.Devices)),
		item("deviceRules", deviceRulesTerm(r.DeviceRules)),
		item("sysctls", stringMapTerm(r.Sysctls)),
		item("rlimits", rlimitsTerm(r.Rlimits)),
		item("annotations", stringMapTerm(r.Annotations)),
		item("raises", raisesTerm(r.Raises)),
	}
	if r.Image != nil {
		img := []([2]*ast.Term){
			item("reference", ast.StringTerm(r.Image.Reference)),
			item("digest", ast.StringTerm(r.Image.Digest)),
			item("verified", ast.BooleanTerm(r.Image.Verified)),
		}
		if r.Image.SignerRole != "" {
			img = append(img, item("signerRole", ast.StringTerm(r.Image.SignerRole)))
		}
		items = append(items, item("image", ast.ObjectTerm(img...)))
	}
	return ast.NewObject(items...)
}

func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(ast.StringTerm(k), v) }

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

func uintsTerm(us []uint32) *ast.Term {
	ts := make([]*ast.Term, len(us))
	for i, u := range us {
		ts[i] = ast.UIntNumberTerm(uint64(u))
	}
	return ast.ArrayTerm(ts...)
}

func stringMapTerm(m map[string]string) *ast.Term {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	items := make([][2]*ast.Term, len(keys))
	for i, k := range keys {
		items[i] = item(k, ast.StringTerm(m[k]))
	}
	return ast.ObjectTerm(items...)
}

func identityTerm(id Identity) *ast.Term {
	items := []([2]*ast.Term){
		item("uid", ast.UIntNumberTerm(uint64(id.UID))),
		item("gid", ast.UIntNumberTerm(uint64(id.GID))),
	}
	if id.Principal != "" {
		items = append(items, item("principal", ast.StringTerm(id.Principal)))
	}
	return ast.ObjectTerm(items...)
}

func processTerm(p Process) *ast.Term {
	user := []([2]*ast.Term){
		item("uid", ast.UIntNumberTerm(uint64(p.User.UID))),
		item("gid", ast.UIntNumberTerm(uint64(p.User.GID))),
	}
	if len(p.User.AdditionalGids) > 0 {
		user = append(user, item("additionalGids", uintsTerm(p.User.AdditionalGids)))
	}
	return ast.ObjectTerm(
		item("args", stringsTerm(p.Args)),
		item("user", ast.ObjectTerm(user...)),
		item("cwd", ast.StringTerm(p.Cwd)),
		item("env", stringsTerm(p.Env)),
		item("terminal", ast.BooleanTerm(p.Terminal)),
		item("noNewPrivileges", ast.BooleanTerm(p.NoNewPrivileges)),
	)
}

func mountsTerm(ms []Mount) *ast.Term {
	ts := make([]*ast.Term, len(ms))
	for i, m := range ms {
		ts[i] = ast.ObjectTerm(
			item("type", ast.StringTerm(m.Type)),
			item("source", ast.StringTerm(m.Source)),
			item("destination", ast.StringTerm(m.Destination)),
			item("options", stringsTerm(m.Options)),
			item("readOnly", ast.BooleanTerm(m.ReadOnly)),
			item("bind", ast.BooleanTerm(m.Bind)),
		)
	}
	return ast.ArrayTerm(ts...)
}

func namespacesTerm(ns []Namespace) *ast.Term {
	ts := make([]*ast.Term, len(ns))
	for i, n := range ns {
		items := []([2]*ast.Term){item("type", ast.StringTerm(n.Type)), item("shared", ast.BooleanTerm(n.Shared))}
		if n.Path != "" {
			items = append(items, item("path", ast.StringTerm(n.Path)))
		}
		ts[i] = ast.ObjectTerm(items...)
	}
	return ast.ArrayTerm(ts...)
}

func macTerm(m MAC) *ast.Term {
	items := []([2]*ast.Term){item("layer", ast.StringTerm(m.Layer))}
	if m.Label != "" {
		items = append(items, item("label", ast.StringTerm(m.Label)))
	}
	if m.Profile != "" {
		items = append(items, item("profile", ast.StringTerm(m.Profile)))
	}
	return ast.ObjectTerm(items...)
}

func resourcesTerm(r Resources) *ast.Term {
	var items [][2]*ast.Term
	if r.MemoryLimit != nil {
		items = append(items, item("memoryLimit", ast.IntNumberTerm(int(*r.MemoryLimit))))
	}
	if r.PidsLimit != nil {
		items = append(items, item("pidsLimit", ast.IntNumberTerm(int(*r.PidsLimit))))
	}
	if r.CPUShares != nil {
		items = append(items, item("cpuShares", ast.UIntNumberTerm(*r.CPUShares)))
	}
	if r.CPUQuota != nil {
		items = append(items, item("cpuQuota", ast.IntNumberTerm(int(*r.CPUQuota))))
	}
	if r.CPUPeriod != nil {
		items = append(items, item("cpuPeriod", ast.UIntNumberTerm(*r.CPUPeriod)))
	}
	return ast.ObjectTerm(items...)
}

func devicesTerm(ds []Device) *ast.Term {
	ts := make([]*ast.Term, len(ds))
	for i, d := range ds {
		ts[i] = ast.ObjectTerm(
			item("type", ast.StringTerm(d.Type)),
			item("path", ast.StringTerm(d.Path)),
			item("major", ast.IntNumberTerm(int(d.Major))),
			item("minor", ast.IntNumberTerm(int(d.Minor))),
		)
	}
	return ast.ArrayTerm(ts...)
}

func deviceRulesTerm(ds []DeviceRule) *ast.Term {
	ts := make([]*ast.Term, len(ds))
	for i, d := range ds {
		ts[i] = ast.ObjectTerm(
			item("allow", ast.BooleanTerm(d.Allow)),
			item("type", ast.StringTerm(d.Type)),
			item("major", ast.IntNumberTerm(int(d.Major))),
			item("minor", ast.IntNumberTerm(int(d.Minor))),
			item("access", ast.StringTerm(d.Access)),
		)
	}
	return ast.ArrayTerm(ts...)
}

func rlimitsTerm(rs []Rlimit) *ast.Term {
	ts := make([]*ast.Term, len(rs))
	for i, r := range rs {
		ts[i] = ast.ObjectTerm(
			item("type", ast.StringTerm(r.Type)),
			item("hard", ast.UIntNumberTerm(r.Hard)),
			item("soft", ast.UIntNumberTerm(r.Soft)),
		)
	}
	return ast.ArrayTerm(ts...)
}

func raisesTerm(rs []Raise) *ast.Term {
	ts := make([]*ast.Term, len(rs))
	for i, r := range rs {
		ts[i] = ast.ObjectTerm(
			item("field", ast.StringTerm(r.Field)),
			item("from", ast.StringTerm(r.From)),
			item("to", ast.StringTerm(r.To)),
		)
	}
	return ast.ArrayTerm(ts...)
}
