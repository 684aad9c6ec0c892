package policy

import (
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts a Request to the AST value OPA evaluates, directly and without a JSON round
// trip (a round trip costs more than the whole default policy). The shape must equal the JSON
// encoding: TestToValueMatchesJSON compares both on the test corpus.
func toValue(r *Request) ast.Value {
	items := [][2]*ast.Term{
		item("apiVersion", str(r.APIVersion)),
		item("tenant", str(r.Tenant)),
		item("identity", memoised(&identityMemo, r.Identity, identityTerm)),
		item("operation", str(string(r.Operation))),
		item("stateRoot", str(r.StateRoot)),
		item("privileged", boolean(r.Privileged)),
		item("process", processTerm(r.Process)),
		item("capabilities", stringsTerm(r.Capabilities)),
		item("mounts", mountsTerm(r.Mounts)),
		item("namespaces", namespacesTerm(r.Namespaces)),
		item("network", memoised(&networkMemo, r.Network, networkTerm)),
		item("seccomp", memoised(&seccompMemo, r.Seccomp, seccompTerm)),
		item("mac", memoised(&macMemo, r.MAC, macTerm)),
		item("rootfs", rootfsTerms[r.Rootfs.ReadOnly]),
		item("resources", resourcesTerm(r.Resources)),
		item("devices", devicesTerm(r.Devices)),
		item("deviceRules", deviceRulesTerm(r.DeviceRules)),
		item("sysctls", stringMapTerm(r.Sysctls)),
		item("rlimits", rlimitsTerm(r.Rlimits)),
		item("annotations", stringMapTerm(r.Annotations)),
		item("raises", raisesTerm(r.Raises)),
	}
	if len(r.Publish) > 0 {
		items = append(items, item("publish", publishTerm(r.Publish)))
	}
	if len(r.Hooks) > 0 {
		items = append(items, item("hooks", hooksTerm(r.Hooks)))
	}
	if len(r.DockerVolumes) > 0 {
		items = append(items, item("dockerVolumes", arrayTerm(r.DockerVolumes, func(v DockerVolume) *ast.Term {
			return ast.ObjectTerm(item("source", str(v.Source)), item("name", str(v.Name)), item("state", str(v.State)))
		})))
	}
	if r.Egress != nil {
		items = append(items, item("egress", egressTerm(r.Egress)))
	}
	if b := r.Bandwidth; b != nil {
		items = append(items, item("bandwidth", ast.ObjectTerm(
			item("ingressRate", ast.UIntNumberTerm(b.IngressRate)),
			item("egressRate", ast.UIntNumberTerm(b.EgressRate)))))
	}
	if r.Pod != nil {
		pod := []([2]*ast.Term){item("sandbox", str(r.Pod.Sandbox))}
		if r.Pod.UID != "" {
			pod = append(pod, item("uid", str(r.Pod.UID)))
		}
		items = append(items, item("pod", ast.ObjectTerm(pod...)))
	}
	if r.Image != nil {
		img := []([2]*ast.Term){
			item("reference", str(r.Image.Reference)),
			item("digest", str(r.Image.Digest)),
			item("verified", boolean(r.Image.Verified)),
		}
		if r.Image.SignerRole != "" {
			img = append(img, item("signerRole", str(r.Image.SignerRole)))
		}
		items = append(items, item("image", ast.ObjectTerm(img...)))
	}
	return ast.NewObject(items...)
}

// internedTerms are the document's field names and its most common values (mount types and
// options, namespace types, capability names…), allocated once: terms are immutable once built
// and shared read-only between concurrent evaluations (OPA interns its own common terms the
// same way). Fresh terms for these were most of a decision's input allocations.
var internedTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range strings.Fields(`
		apiVersion tenant identity operation stateRoot privileged process capabilities mounts namespaces
		network mode seccomp profile digest defaultAction mac rootfs readOnly resources devices
		deviceRules sysctls rlimits annotations raises image reference verified signerRole uid gid
		principal args user additionalGids cwd env terminal noNewPrivileges type source
		destination options bind shared path layer label memoryLimit pidsLimit cpuShares cpuQuota
		cpuPeriod major minor allow access hard soft field from to
		bulwark.dev/run/v1 create run exec private host joined default custom unconfined
		SCMP_ACT_ERRNO SCMP_ACT_KILL SCMP_ACT_KILL_PROCESS SCMP_ACT_ALLOW SCMP_ACT_LOG
		landlock selinux apparmor none a b c rwm rw r w m
		cgroup ipc mount pid uts time
		proc tmpfs devpts mqueue sysfs cgroup2 rbind ro nosuid noexec nodev strictatime relatime
		private rprivate rslave newinstance ptmxmode=0666 mode=755 mode=0620 mode=1777 gid=5
		size=65536k /var/lib/bulwark / /proc /dev /dev/pts /dev/shm /dev/mqueue /sys /sys/fs/cgroup shm
		AUDIT_WRITE CHOWN DAC_OVERRIDE FOWNER FSETID KILL MKNOD NET_BIND_SERVICE NET_RAW SETFCAP
		SETGID SETPCAP SETUID SYS_CHROOT SYS_ADMIN SYS_PTRACE
		PATH HOME TERM HOSTNAME RLIMIT_NOFILE RLIMIT_NPROC RLIMIT_CORE
		reasons code message constraints maxMemory maxPids`) {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// str returns the shared term for a common string, else a new one.
func str(s string) *ast.Term {
	if t, ok := internedTerms[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

func boolean(b bool) *ast.Term { return ast.InternedTerm(b) }

func integer(i int64) *ast.Term { return ast.InternedTerm(int(i)) }

func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(str(k), v) }

// arrayTerm builds the array of term(x) for each element, in order.
func arrayTerm[T any](xs []T, term func(T) *ast.Term) *ast.Term {
	ts := make([]*ast.Term, len(xs))
	for i, x := range xs {
		ts[i] = term(x)
	}
	return ast.ArrayTerm(ts...)
}

func stringsTerm(ss []string) *ast.Term {
	return arrayTerm(ss, str)
}

func uintsTerm(us []uint32) *ast.Term {
	return arrayTerm(us, func(u uint32) *ast.Term { return ast.UIntNumberTerm(uint64(u)) })
}

func stringMapTerm(m map[string]string) *ast.Term {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	items := make([][2]*ast.Term, len(keys))
	for i, k := range keys {
		items[i] = item(k, str(m[k]))
	}
	return ast.ObjectTerm(items...)
}

func identityTerm(id Identity) *ast.Term {
	items := []([2]*ast.Term){
		item("uid", ast.UIntNumberTerm(uint64(id.UID))),
		item("gid", ast.UIntNumberTerm(uint64(id.GID))),
	}
	if id.Principal != "" {
		items = append(items, item("principal", str(id.Principal)))
	}
	return ast.ObjectTerm(items...)
}

func newUserTerm(u User) *ast.Term {
	user := []([2]*ast.Term){
		item("uid", ast.UIntNumberTerm(uint64(u.UID))),
		item("gid", ast.UIntNumberTerm(uint64(u.GID))),
	}
	if len(u.AdditionalGids) > 0 {
		user = append(user, item("additionalGids", uintsTerm(u.AdditionalGids)))
	}
	return ast.ObjectTerm(user...)
}

func processTerm(p Process) *ast.Term {
	return ast.ObjectTerm(
		item("args", stringsTerm(p.Args)),
		item("user", userTerm(p.User)),
		item("cwd", str(p.Cwd)),
		item("env", stringsTerm(p.Env)),
		item("terminal", boolean(p.Terminal)),
		item("noNewPrivileges", boolean(p.NoNewPrivileges)),
	)
}

func mountsTerm(ms []Mount) *ast.Term {
	return arrayTerm(ms, mountTerm)
}

func newMountTerm(m Mount) *ast.Term {
	return ast.ObjectTerm(
		item("type", str(m.Type)),
		item("source", str(m.Source)),
		item("destination", str(m.Destination)),
		item("options", stringsTerm(m.Options)),
		item("readOnly", boolean(m.ReadOnly)),
		item("bind", boolean(m.Bind)),
	)
}

func newNamespacesTerm(ns map[string]Namespace) *ast.Term {
	items := make([][2]*ast.Term, 0, len(ns))
	for _, t := range slices.Sorted(maps.Keys(ns)) {
		n := ns[t]
		fields := []([2]*ast.Term){item("shared", boolean(n.Shared))}
		if n.Path != "" {
			fields = append(fields, item("path", str(n.Path)))
		}
		if n.Join != "" {
			fields = append(fields, item("join", str(n.Join)))
		}
		if n.Pod != "" {
			fields = append(fields, item("pod", str(n.Pod)))
		}
		items = append(items, item(t, ast.ObjectTerm(fields...)))
	}
	return ast.ObjectTerm(items...)
}

var rootfsTerms = map[bool]*ast.Term{
	false: ast.ObjectTerm(item("readOnly", boolean(false))),
	true:  ast.ObjectTerm(item("readOnly", boolean(true))),
}

func networkTerm(n Network) *ast.Term {
	if n.Name == "" {
		return ast.ObjectTerm(item("mode", str(n.Mode)))
	}
	return ast.ObjectTerm(item("mode", str(n.Mode)), item("name", str(n.Name)))
}

func publishTerm(ps []Publish) *ast.Term {
	out := make([]*ast.Term, len(ps))
	for i, p := range ps {
		out[i] = ast.ObjectTerm(
			item("hostIP", str(p.HostIP)),
			item("hostPort", ast.IntNumberTerm(p.HostPort)),
			item("containerPort", ast.IntNumberTerm(p.ContainerPort)),
			item("protocol", str(p.Protocol)))
	}
	return ast.ArrayTerm(out...)
}

func hooksTerm(hs []Hook) *ast.Term {
	return arrayTerm(hs, func(h Hook) *ast.Term {
		return ast.ObjectTerm(
			item("phase", str(h.Phase)),
			item("path", str(h.Path)),
			item("resolved", str(h.Resolved)),
			item("sha256", str(h.SHA256)),
			item("args", stringsTerm(h.Args)))
	})
}

func egressTerm(e *Egress) *ast.Term {
	if len(e.Allow) == 0 {
		return ast.ObjectTerm(item("mode", str(e.Mode)))
	}
	allow := make([]*ast.Term, len(e.Allow))
	for i, r := range e.Allow {
		allow[i] = ast.ObjectTerm(
			item("cidr", str(r.CIDR)),
			item("protocol", str(r.Protocol)),
			item("fromPort", ast.IntNumberTerm(r.FromPort)),
			item("toPort", ast.IntNumberTerm(r.ToPort)))
	}
	return ast.ObjectTerm(item("mode", str(e.Mode)), item("allow", ast.ArrayTerm(allow...)))
}

func seccompTerm(s Seccomp) *ast.Term {
	return ast.ObjectTerm(
		item("profile", str(s.Profile)),
		item("digest", str(s.Digest)),
		item("defaultAction", str(s.DefaultAction)))
}

func macTerm(m MAC) *ast.Term {
	items := []([2]*ast.Term){item("layer", str(m.Layer))}
	if m.Label != "" {
		items = append(items, item("label", str(m.Label)))
	}
	if m.Profile != "" {
		items = append(items, item("profile", str(m.Profile)))
	}
	return ast.ObjectTerm(items...)
}

func newResourcesTerm(r Resources) *ast.Term {
	var items [][2]*ast.Term
	if r.MemoryLimit != nil {
		items = append(items, item("memoryLimit", integer(*r.MemoryLimit)))
	}
	if r.PidsLimit != nil {
		items = append(items, item("pidsLimit", integer(*r.PidsLimit)))
	}
	if r.CPUShares != nil {
		items = append(items, item("cpuShares", ast.UIntNumberTerm(*r.CPUShares)))
	}
	if r.CPUQuota != nil {
		items = append(items, item("cpuQuota", integer(*r.CPUQuota)))
	}
	if r.CPUPeriod != nil {
		items = append(items, item("cpuPeriod", ast.UIntNumberTerm(*r.CPUPeriod)))
	}
	return ast.ObjectTerm(items...)
}

func devicesTerm(ds []Device) *ast.Term {
	return arrayTerm(ds, func(d Device) *ast.Term { return memoised(&deviceMemo, d, deviceTerm) })
}

func deviceTerm(d Device) *ast.Term {
	return ast.ObjectTerm(
		item("type", str(d.Type)),
		item("path", str(d.Path)),
		item("major", integer(d.Major)),
		item("minor", integer(d.Minor)),
	)
}

func deviceRulesTerm(ds []DeviceRule) *ast.Term {
	return arrayTerm(ds, func(d DeviceRule) *ast.Term { return memoised(&deviceRuleMemo, d, deviceRuleTerm) })
}

func deviceRuleTerm(d DeviceRule) *ast.Term {
	return ast.ObjectTerm(
		item("allow", boolean(d.Allow)),
		item("type", str(d.Type)),
		item("major", integer(d.Major)),
		item("minor", integer(d.Minor)),
		item("access", str(d.Access)),
	)
}

func rlimitsTerm(rs []Rlimit) *ast.Term {
	return arrayTerm(rs, func(r Rlimit) *ast.Term { return memoised(&rlimitMemo, r, rlimitTerm) })
}

func rlimitTerm(r Rlimit) *ast.Term {
	return ast.ObjectTerm(
		item("type", str(r.Type)),
		item("hard", ast.UIntNumberTerm(r.Hard)),
		item("soft", ast.UIntNumberTerm(r.Soft)),
	)
}

func raisesTerm(rs []Raise) *ast.Term {
	return arrayTerm(rs, func(r Raise) *ast.Term { return memoised(&raiseMemo, r, raiseTerm) })
}

func raiseTerm(r Raise) *ast.Term {
	return ast.ObjectTerm(
		item("field", str(r.Field)),
		item("from", str(r.From)),
		item("to", str(r.To)),
	)
}
