package compiler

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"bulwark.dev/bulwark/sandbox/internal/seccomp/bpfload"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The compact emitter writes the classic BPF for a profile resolved to one architecture, with the
// semantics libseccomp gives the same rules, in a fraction of libseccomp's instructions: syscall
// numbers are a binary search over ranges of numbers with one outcome (not one comparison per
// syscall), and each syscall's argument rules become one decision over each argument word (a
// range search, or a search over the values of a few masked bits) instead of one test chain per
// rule. The Docker-format default shrinks from 851 instructions to under 200, so the kernel's
// saved copy of each container's filter (len*8 bytes, kmalloc'd) fits a 4 KiB slab object instead
// of an 8 KiB one. Whatever the emitter cannot prove it handles like libseccomp (several
// architectures, overlapping rules with different actions, masks it cannot search) it declines,
// and Compile exports libseccomp's own program instead. TestCompactMatchesLibseccomp checks the
// two programs against each other on every syscall number and on every argument boundary.

// errDecline says the compact emitter does not handle this profile; it is not a failure.
var errDecline = errors.New("compact emitter declines")

// ruleSet is a profile resolved for one architecture, in plain data: what Compile gives libseccomp.
type ruleSet struct {
	auditArch uint32 // the architecture's AUDIT_ARCH_* value, seccomp_data.arch
	x32Kill   bool   // x86-64: numbers from 0x40000000 (x32), except -1, take the bad-arch action
	badArch   uint32 // return value for another architecture
	def       uint32 // return value for a syscall no rule names
	declined  error  // set while resolving when the profile is outside what the emitter handles
	calls     map[uint32][]argRule
}

// argRule is one libseccomp rule: its action when every condition holds.
type argRule struct {
	ret   uint32
	conds []argCond // at most one per argument
}

// argCond is one OCI comparison of a 64-bit syscall argument. For MaskedEqual, v is the mask and
// v2 the value ((arg & v) == v2), as in the runtime spec.
type argCond struct {
	arg   uint
	op    specs.LinuxSeccompOperator
	v, v2 uint64
}

// add records one rule for syscall nr, as libseccomp's AddRule/AddRuleConditional would.
func (rs *ruleSet) add(nr int32, ret uint32, conds []argCond) {
	if nr < 0 {
		// A name without a number on this architecture (libseccomp's pseudo-syscalls): libseccomp
		// adds no rule for it either.
		return
	}
	if rs.x32Kill && uint32(nr) >= 0x40000000 {
		rs.declined = fmt.Errorf("%w: syscall number %#x in the x32 range", errDecline, nr)
		return
	}
	for i, c := range conds {
		for _, d := range conds[i+1:] {
			if c.arg == d.arg {
				rs.declined = fmt.Errorf("%w: two conditions on argument %d of one rule", errDecline, c.arg)
				return
			}
		}
	}
	rs.calls[uint32(nr)] = append(rs.calls[uint32(nr)], argRule{ret: ret, conds: conds})
}

// node is one instruction of the program being built, before layout; edges point forward.
type node struct {
	kind  nodeKind
	op    uint16 // kJmp: unix.BPF_JEQ, BPF_JGT or BPF_JGE
	k     uint32
	next  *node // kLd, kAnd, kJa
	t, fl *node // kJmp: when true, when false
}

type nodeKind uint8

const (
	kRet nodeKind = iota
	kLd
	kAnd
	kJmp
	kJa
)

// seg is a run of values, from lo up to the next seg's lo, that leads to one node.
type seg struct {
	lo uint32
	to *node
}

type emitter struct {
	rs    *ruleSet
	rules []argRule // the syscall being emitted
	rets  map[uint32]*node
	memo  map[string]*node
}

// emitCompact returns the program for rs, or an error wrapping errDecline.
func emitCompact(rs *ruleSet) ([]unix.SockFilter, error) {
	if rs.declined != nil {
		return nil, rs.declined
	}
	e := &emitter{rs: rs, rets: map[uint32]*node{}}
	nrs := make([]uint32, 0, len(rs.calls))
	for nr := range rs.calls {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	def := e.ret(rs.def)
	segs := []seg{{0, def}}
	for _, nr := range nrs {
		e.rules, e.memo = rs.calls[nr], map[string]*node{}
		to, err := e.decide(e.all(), 0)
		if err != nil {
			return nil, err
		}
		segs = addRange(segs, nr, nr, to, def)
	}
	if rs.x32Kill {
		segs = addRange(segs, 0x40000000, 0xfffffffe, e.ret(rs.badArch), def)
	}
	dispatch := e.switchOn(0, 0, segs)
	root := &node{kind: kLd, k: 4, next: &node{kind: kJmp, op: unix.BPF_JEQ, k: rs.auditArch, t: dispatch, fl: e.ret(rs.badArch)}}
	return layout(root)
}

// addRange sets [lo, hi] to lead to to; segs ends with a segment that starts at or below lo and
// runs to the top, and def takes over above hi.
func addRange(segs []seg, lo, hi uint32, to, def *node) []seg {
	if last := &segs[len(segs)-1]; last.lo == lo {
		last.to = to
	} else {
		segs = append(segs, seg{lo, to})
	}
	if hi != ^uint32(0) {
		segs = append(segs, seg{hi + 1, def})
	}
	return segs
}

func (e *emitter) ret(k uint32) *node {
	if n, ok := e.rets[k]; ok {
		return n
	}
	n := &node{kind: kRet, k: k}
	e.rets[k] = n
	return n
}

func (e *emitter) all() []int {
	live := make([]int, len(e.rules))
	for i := range live {
		live[i] = i
	}
	return live
}

// switchOn loads the word at off (masked, unless mask is 0) and branches on the segments.
func (e *emitter) switchOn(off, mask uint32, segs []seg) *node {
	segs = mergeSegs(segs)
	if len(segs) == 1 {
		return segs[0].to
	}
	body := searchTree(segs)
	if mask != 0 {
		body = &node{kind: kAnd, k: mask, next: body}
	}
	return &node{kind: kLd, k: off, next: body}
}

func mergeSegs(segs []seg) []seg {
	out := segs[:1:1]
	for _, s := range segs[1:] {
		if s.to != out[len(out)-1].to {
			out = append(out, s)
		}
	}
	return out
}

// searchTree is a balanced binary search over segs by their lower bounds; a single value between
// two segments with the same outcome is one equality test.
func searchTree(segs []seg) *node {
	switch {
	case len(segs) == 1:
		return segs[0].to
	case len(segs) == 3 && segs[0].to == segs[2].to && segs[2].lo == segs[1].lo+1:
		return &node{kind: kJmp, op: unix.BPF_JEQ, k: segs[1].lo, t: segs[1].to, fl: segs[0].to}
	}
	m := len(segs) / 2
	return &node{kind: kJmp, op: unix.BPF_JGE, k: segs[m].lo, t: searchTree(segs[m:]), fl: searchTree(segs[:m])}
}

// decide returns the node that finishes a syscall's decision for the live rules, all of whose
// conditions on arguments below arg hold.
func (e *emitter) decide(live []int, arg uint) (*node, error) {
	for ; arg < 6; arg++ {
		if slices.ContainsFunc(live, func(r int) bool { return e.cond(r, arg) != nil }) {
			break
		}
	}
	if arg == 6 {
		return e.leaf(live)
	}
	key := fmt.Sprint("d", arg, live)
	if n, ok := e.memo[key]; ok {
		return n, nil
	}
	n, err := e.hiStep(live, arg)
	if err != nil {
		return nil, err
	}
	e.memo[key] = n
	return n, nil
}

func (e *emitter) cond(r int, arg uint) *argCond {
	for i := range e.rules[r].conds {
		if c := &e.rules[r].conds[i]; c.arg == arg {
			return c
		}
	}
	return nil
}

// leaf is the outcome when every condition of the live rules holds. Rules with different actions
// that can hold at once are resolved by libseccomp in ways the emitter does not reproduce.
func (e *emitter) leaf(live []int) (*node, error) {
	if len(live) == 0 {
		return e.ret(e.rs.def), nil
	}
	ret := e.rules[live[0]].ret
	for _, r := range live[1:] {
		if e.rules[r].ret != ret {
			return nil, fmt.Errorf("%w: overlapping rules with different actions", errDecline)
		}
	}
	return e.ret(ret), nil
}

// wordPred is what a condition leaves to test on one 32-bit word: always, never, or a comparison.
type wordPred struct {
	kind    predKind
	op      specs.LinuxSeccompOperator
	mask, v uint32 // mask only for MaskedEqual
}

type predKind uint8

const (
	pTrue predKind = iota
	pFalse
	pTest
)

var (
	always = wordPred{kind: pTrue}
	never  = wordPred{kind: pFalse}
)

func (p wordPred) holds(w uint32) bool {
	switch p.kind {
	case pTrue:
		return true
	case pFalse:
		return false
	}
	switch p.op {
	case specs.OpEqualTo:
		return w == p.v
	case specs.OpNotEqual:
		return w != p.v
	case specs.OpGreaterThan:
		return w > p.v
	case specs.OpGreaterEqual:
		return w >= p.v
	case specs.OpLessThan:
		return w < p.v
	case specs.OpLessEqual:
		return w <= p.v
	}
	return w&p.mask == p.v
}

// lowPred is what c asks of the argument's low word once its high word is h.
func lowPred(c *argCond, h uint32) wordPred {
	vh, vl := uint32(c.v>>32), uint32(c.v)
	if c.op == specs.OpMaskedEqual {
		mh, dh := uint32(c.v>>32), uint32(c.v2>>32)
		if h&mh != dh {
			return never
		}
		return wordPred{kind: pTest, op: c.op, mask: uint32(c.v), v: uint32(c.v2)}
	}
	lo := wordPred{kind: pTest, op: c.op, v: vl}
	switch {
	case h == vh:
		return lo
	case c.op == specs.OpEqualTo:
		return never
	case c.op == specs.OpNotEqual:
		return always
	case (h > vh) == (c.op == specs.OpGreaterThan || c.op == specs.OpGreaterEqual):
		return always
	}
	return never
}

// starts adds to pts the first value of each range of words on which p's outcome is constant,
// or reports that p is not a union of ranges (a mask with holes).
func starts(pts []uint32, op specs.LinuxSeccompOperator, mask, v uint32) ([]uint32, bool) {
	add := func(x uint32, carry bool) {
		if !carry {
			pts = append(pts, x)
		}
	}
	switch op {
	case specs.OpMaskedEqual:
		if !prefixMask(mask) {
			return pts, false
		}
		if v&^mask == 0 {
			end := v | ^mask
			pts = append(pts, v)
			add(end+1, end == ^uint32(0))
		}
	default:
		pts = append(pts, v)
		add(v+1, v == ^uint32(0))
	}
	return pts, true
}

// prefixMask reports whether m is ones down from the top bit, then zeros (0 included).
func prefixMask(m uint32) bool {
	x := ^m + 1
	return x&(x-1) == 0
}

// hiStep branches on the high word of argument arg.
func (e *emitter) hiStep(live []int, arg uint) (*node, error) {
	pts := []uint32{0}
	for _, r := range live {
		c := e.cond(r, arg)
		if c == nil {
			continue
		}
		ok := true
		if c.op == specs.OpMaskedEqual {
			pts, ok = starts(pts, c.op, uint32(c.v>>32), uint32(c.v2>>32))
		} else {
			pts, ok = starts(pts, c.op, 0, uint32(c.v>>32))
		}
		if !ok {
			return nil, fmt.Errorf("%w: a mask with holes in an argument's high word", errDecline)
		}
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	segs := make([]seg, 0, len(pts))
	for _, h := range pts {
		preds := make([]wordPred, len(live))
		for i, r := range live {
			preds[i] = always
			if c := e.cond(r, arg); c != nil {
				preds[i] = lowPred(c, h)
			}
		}
		to, err := e.loStep(live, preds, arg)
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg{h, to})
	}
	return e.switchOn(16+8*uint32(arg)+4, 0, segs), nil
}

// loStep branches on the low word of argument arg, where preds[i] is what live[i] asks of it.
func (e *emitter) loStep(live []int, preds []wordPred, arg uint) (*node, error) {
	key := fmt.Sprint("l", arg, live, preds)
	if n, ok := e.memo[key]; ok {
		return n, nil
	}
	n, err := e.loSearch(live, preds, arg)
	if err != nil {
		return nil, err
	}
	e.memo[key] = n
	return n, nil
}

// after returns the rules of live whose predicate holds for w.
func after(live []int, preds []wordPred, w uint32) []int {
	var out []int
	for i, r := range live {
		if preds[i].holds(w) {
			out = append(out, r)
		}
	}
	return out
}

func (e *emitter) loSearch(live []int, preds []wordPred, arg uint) (*node, error) {
	off := 16 + 8*uint32(arg)
	pts, ranges := []uint32{0}, true
	var union uint32
	masksOnly := true
	for _, p := range preds {
		if p.kind != pTest {
			continue
		}
		var ok bool
		pts, ok = starts(pts, p.op, p.mask, p.v)
		ranges = ranges && ok
		masksOnly = masksOnly && p.op == specs.OpMaskedEqual
		union |= p.mask
	}
	switch {
	case ranges:
		// Every predicate is a union of ranges of the word: search the ranges.
		slices.Sort(pts)
		pts = slices.Compact(pts)
		segs := make([]seg, 0, len(pts))
		for _, w := range pts {
			to, err := e.decide(after(live, preds, w), arg+1)
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg{w, to})
		}
		return e.switchOn(off, 0, segs), nil
	case masksOnly && bits.OnesCount32(union) <= 10:
		// Masked tests only, on a few bits: search the values those bits can take.
		vals := subsets(union)
		segs := make([]seg, 0, len(vals))
		for _, w := range vals {
			to, err := e.decide(after(live, preds, w), arg+1)
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg{w, to})
		}
		return e.switchOn(off, union, segs), nil
	}
	return e.sequence(live, preds, arg)
}

// subsets returns every value whose bits are within m, ascending.
func subsets(m uint32) []uint32 {
	out := []uint32{0}
	for s := (0 - m) & m; s != 0; s = (s - m) & m {
		out = append(out, s)
	}
	return out
}

// sequence tests the predicates of the low word one at a time (the first one still open, then
// the rest on each side of it), as libseccomp does for every condition.
func (e *emitter) sequence(live []int, preds []wordPred, arg uint) (*node, error) {
	i := slices.IndexFunc(preds, func(p wordPred) bool { return p.kind == pTest })
	if i < 0 {
		return e.decide(live, arg+1)
	}
	p := preds[i]
	branch := func(holds bool) (*node, error) {
		var l []int
		var ps []wordPred
		for j, q := range preds {
			switch {
			case q == p && holds:
				q = always
			case q == p:
				q = never
			case holds:
				q = implied(p, q)
			}
			if q != never {
				l, ps = append(l, live[j]), append(ps, q)
			}
		}
		return e.loStep(l, ps, arg)
	}
	t, err := branch(true)
	if err != nil {
		return nil, err
	}
	f, err := branch(false)
	if err != nil {
		return nil, err
	}
	test := &node{kind: kJmp, k: p.v, t: t, fl: f}
	switch p.op {
	case specs.OpEqualTo, specs.OpMaskedEqual:
		test.op = unix.BPF_JEQ
	case specs.OpNotEqual:
		test.op, test.t, test.fl = unix.BPF_JEQ, f, t
	case specs.OpGreaterThan:
		test.op = unix.BPF_JGT
	case specs.OpGreaterEqual:
		test.op = unix.BPF_JGE
	case specs.OpLessThan:
		test.op, test.t, test.fl = unix.BPF_JGE, f, t
	case specs.OpLessEqual:
		test.op, test.t, test.fl = unix.BPF_JGT, f, t
	}
	body := test
	if p.op == specs.OpMaskedEqual {
		body = &node{kind: kAnd, k: p.mask, next: test}
	}
	return &node{kind: kLd, k: 16 + 8*uint32(arg), next: body}, nil
}

// implied is what is left of q once p holds: q itself where the emitter cannot tell.
func implied(p, q wordPred) wordPred {
	if q.kind != pTest {
		return q
	}
	decided := func(holds bool) wordPred {
		if holds {
			return always
		}
		return never
	}
	switch {
	case p.op == specs.OpEqualTo:
		return decided(q.holds(p.v))
	case p.op == specs.OpMaskedEqual && p.mask == ^uint32(0):
		return decided(q.holds(p.v))
	case p.op == specs.OpMaskedEqual && q.op == specs.OpMaskedEqual:
		common := p.mask & q.mask
		switch {
		case q.v&^q.mask != 0 || p.v&common != q.v&common:
			return never
		case q.mask&^p.mask == 0:
			return always
		}
	}
	return q
}

// layout places the nodes so that every edge goes forward (reverse post-order), a load's next
// instruction follows it, and no conditional jump is longer than 255: a longer one goes through
// a trampoline (a copy of the return it reaches, or an unconditional jump) placed right after it.
func layout(root *node) ([]unix.SockFilter, error) {
	var post []*node
	seen := map[*node]bool{}
	var visit func(n *node)
	visit = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		switch n.kind {
		case kJmp:
			visit(n.t)
			visit(n.fl)
		case kLd, kAnd, kJa:
			visit(n.next)
		}
		post = append(post, n)
	}
	visit(root)
	order := make([]*node, len(post))
	for i, n := range post {
		order[len(post)-1-i] = n
	}
	for {
		if len(order) > bpfload.MaxInstructions {
			return nil, fmt.Errorf("%w: %d instructions", errDecline, len(order))
		}
		pos := make(map[*node]int, len(order))
		for i, n := range order {
			pos[n] = i
		}
		at, fix := -1, (*node)(nil)
		for i, n := range order {
			switch n.kind {
			case kLd, kAnd:
				if pos[n.next] != i+1 {
					at, fix = i, &node{kind: kJa, next: n.next}
					n.next = fix
				}
			case kJmp:
				if pos[n.t]-i-1 > 255 {
					at, fix = i, trampoline(n.t)
					n.t = fix
				} else if pos[n.fl]-i-1 > 255 {
					at, fix = i, trampoline(n.fl)
					n.fl = fix
				}
			}
			if fix != nil {
				break
			}
		}
		if fix == nil {
			return encode(order, pos)
		}
		order = slices.Insert(order, at+1, fix)
	}
}

func trampoline(to *node) *node {
	if to.kind == kRet {
		return &node{kind: kRet, k: to.k}
	}
	return &node{kind: kJa, next: to}
}

func encode(order []*node, pos map[*node]int) ([]unix.SockFilter, error) {
	out := make([]unix.SockFilter, len(order))
	for i, n := range order {
		rel := func(to *node) int { return pos[to] - i - 1 }
		switch n.kind {
		case kRet:
			out[i] = unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: n.k}
		case kLd:
			out[i] = unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: n.k}
		case kAnd:
			out[i] = unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: n.k}
		case kJa:
			if rel(n.next) < 0 {
				return nil, fmt.Errorf("seccomp layout: backward jump at %d", i)
			}
			out[i] = unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA, K: uint32(rel(n.next))}
		case kJmp:
			t, f := rel(n.t), rel(n.fl)
			if t < 0 || f < 0 || t > 255 || f > 255 {
				return nil, fmt.Errorf("seccomp layout: jump out of range at %d (%d, %d)", i, t, f)
			}
			out[i] = unix.SockFilter{Code: unix.BPF_JMP | n.op | unix.BPF_K, Jt: uint8(t), Jf: uint8(f), K: n.k}
		}
	}
	if out[len(out)-1].Code != unix.BPF_RET|unix.BPF_K {
		return nil, errors.New("seccomp layout: the program does not end with a return")
	}
	return out, nil
}
