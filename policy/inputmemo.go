package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Most of a request document repeats from one request to the next: the floor's mounts,
// namespaces, device rules and rlimits, the seccomp and MAC summaries, the process user. Their
// terms are memoised by value so a decision builds only what is new (args, env, annotations…);
// fresh terms for them were most of the input's allocations and so a large part of the
// garbage collector's work, which is what sets the decision latency's tail. Terms are
// immutable once built and shared read-only between concurrent evaluations, as OPA shares its
// store's values. Each memo is bounded and never evicts: once full, new values are built fresh
// every time, so requests that all differ cost what they did before and memory stays capped.
const memoLimit = 256

// termMemo maps a comparable summary of a request part to its term.
type termMemo[K comparable] struct {
	mu sync.RWMutex
	m  map[K]*ast.Term // guarded by mu
}

func (c *termMemo[K]) get(k K) (*ast.Term, bool) {
	c.mu.RLock()
	t, ok := c.m[k]
	c.mu.RUnlock()
	return t, ok
}

func (c *termMemo[K]) put(k K, t *ast.Term) *ast.Term {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[K]*ast.Term)
	}
	if len(c.m) < memoLimit {
		c.m[k] = t
	}
	c.mu.Unlock()
	return t
}

// maxMemoOptions bounds the mount options a memo key holds; mounts with more are built fresh.
const maxMemoOptions = 8

type mountKey struct {
	typ, source, destination string
	options                  [maxMemoOptions]string
	nOptions                 int
	readOnly, bind           bool
}

// memoNamespaceTypes are the namespace types a memo key covers, in the document's (sorted)
// key order; a map with any other key is built fresh.
var memoNamespaceTypes = [...]string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}

type namespaceKey [len(memoNamespaceTypes)]struct {
	present, shared bool
	path, join, pod string
}

type resourcesKey struct {
	memory, pids, quota                  int64
	shares, period                       uint64
	hasMem, hasPids, hasShares, hasQuota bool
	hasPeriod                            bool
}

var (
	mountMemo      termMemo[mountKey]
	namespaceMemo  termMemo[namespaceKey]
	resourcesMemo  termMemo[resourcesKey]
	identityMemo   termMemo[Identity]
	userMemo       termMemo[[2]uint32]
	networkMemo    termMemo[Network]
	seccompMemo    termMemo[Seccomp]
	macMemo        termMemo[MAC]
	deviceMemo     termMemo[Device]
	deviceRuleMemo termMemo[DeviceRule]
	rlimitMemo     termMemo[Rlimit]
	raiseMemo      termMemo[Raise]
)

// memoised returns memo's term for k, building and recording it on a miss.
func memoised[K comparable](memo *termMemo[K], k K, build func(K) *ast.Term) *ast.Term {
	if t, ok := memo.get(k); ok {
		return t
	}
	return memo.put(k, build(k))
}

func mountTerm(m Mount) *ast.Term {
	if len(m.Options) > maxMemoOptions {
		return newMountTerm(m)
	}
	k := mountKey{typ: m.Type, source: m.Source, destination: m.Destination, nOptions: len(m.Options), readOnly: m.ReadOnly, bind: m.Bind}
	copy(k.options[:], m.Options)
	if t, ok := mountMemo.get(k); ok {
		return t
	}
	return mountMemo.put(k, newMountTerm(m))
}

func namespacesTerm(ns map[string]Namespace) *ast.Term {
	var k namespaceKey
	n := 0
	for i, t := range memoNamespaceTypes {
		if v, ok := ns[t]; ok {
			k[i].present, k[i].shared, k[i].path, k[i].join, k[i].pod = true, v.Shared, v.Path, v.Join, v.Pod
			n++
		}
	}
	if n != len(ns) {
		return newNamespacesTerm(ns)
	}
	if t, ok := namespaceMemo.get(k); ok {
		return t
	}
	return namespaceMemo.put(k, newNamespacesTerm(ns))
}

func resourcesTerm(r Resources) *ast.Term {
	var k resourcesKey
	if r.MemoryLimit != nil {
		k.memory, k.hasMem = *r.MemoryLimit, true
	}
	if r.PidsLimit != nil {
		k.pids, k.hasPids = *r.PidsLimit, true
	}
	if r.CPUShares != nil {
		k.shares, k.hasShares = *r.CPUShares, true
	}
	if r.CPUQuota != nil {
		k.quota, k.hasQuota = *r.CPUQuota, true
	}
	if r.CPUPeriod != nil {
		k.period, k.hasPeriod = *r.CPUPeriod, true
	}
	if t, ok := resourcesMemo.get(k); ok {
		return t
	}
	return resourcesMemo.put(k, newResourcesTerm(r))
}

func userTerm(u User) *ast.Term {
	if len(u.AdditionalGids) > 0 {
		return newUserTerm(u)
	}
	k := [2]uint32{u.UID, u.GID}
	if t, ok := userMemo.get(k); ok {
		return t
	}
	return userMemo.put(k, newUserTerm(u))
}
