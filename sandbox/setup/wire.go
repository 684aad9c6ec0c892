package setup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"syscall"

	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
)

// The body of a setup message, in a fixed binary layout written and read field by field, so that
// neither side pays encoding/json's reflection (in the setup child it was most of child:config,
// every start). Integers are varints (signed ones zig-zag), strings and byte strings a length and
// their bytes, lists and maps a count and their elements, booleans one byte, an optional value a
// presence byte and the value. Every field of message and of the types below is written, in
// declaration order; TestWireRoundTrip fills every field of a message by reflection and checks
// that it comes back whole, so a field added without its line here fails that test. The decoder
// trusts nothing: every length and count is checked against the bytes that remain before anything
// is allocated, and a narrowing conversion against its range.

func encodeMessage(m *Message) []byte {
	var e encoder
	e.str(string(m.Kind))
	e.str(m.Console)
	e.uint(uint64(len(m.Steps)))
	for _, s := range m.Steps {
		e.str(s.Step)
		e.int(s.NS)
	}
	e.int(m.Started)
	e.bool(m.Config != nil)
	if m.Config != nil {
		e.config(m.Config)
	}
	e.bool(m.Error != nil)
	if m.Error != nil {
		ie := m.Error
		e.str(ie.Layer)
		e.str(ie.Step)
		e.uint(uint64(ie.Errno))
		e.str(ie.Path)
		e.str(ie.Message)
	}
	return e.b
}

func decodeMessage(b []byte) (*Message, error) {
	d := decoder{b: b}
	m := &Message{Kind: Kind(d.str()), Console: d.str()}
	n := d.count(2)
	m.Steps = makeList[StepTime](n)
	for range n {
		m.Steps = append(m.Steps, StepTime{Step: d.str(), NS: d.int()})
	}
	m.Started = d.int()
	if d.bool() {
		m.Config = d.config()
	}
	if d.bool() {
		m.Error = &InitError{Layer: d.str(), Step: d.str(), Errno: syscall.Errno(d.uintN(math.MaxUint32)), Path: d.str(), Message: d.str()}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the message", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode message: %w", d.err)
	}
	return m, nil
}

func (e *encoder) config(c *Config) {
	e.str(c.ID)
	e.str(c.Hostname)
	e.str(c.Domainname)
	e.uint(uint64(len(c.Mounts)))
	for _, m := range c.Mounts {
		e.str(m.Dest)
		e.str(m.Type)
		e.str(m.Source)
		e.uint(uint64(m.Flags))
		e.str(m.Data)
		e.int(int64(m.SrcFD))
		e.bool(m.Scratch)
		e.bool(m.Devices)
	}
	e.strs(c.MaskedPaths)
	e.strs(c.ReadonlyPaths)
	e.uint(uint64(len(c.Sysctl)))
	for k, v := range c.Sysctl {
		e.str(k)
		e.str(v)
	}
	e.uint(uint64(len(c.Files)))
	for _, f := range c.Files {
		e.str(f.Dest)
		e.str(f.Content)
		e.int(int64(f.SrcFD))
	}
	e.uint(uint64(len(c.Cgroups)))
	for _, v := range c.Cgroups {
		e.str(v.Name)
		e.bool(v.Unified)
		e.str(v.Options)
	}
	e.process(&c.Process)
	e.bool(c.NetJoined)
	e.int(int64(c.RootfsFD))
	e.int(int64(c.FifoFD))
	e.int(int64(c.MaskDirFD))
	e.int(int64(c.CgroupSkelFD))
	e.bool(c.WritableRoot)
}

func (d *decoder) config() *Config {
	c := &Config{ID: d.str(), Hostname: d.str(), Domainname: d.str()}
	n := d.count(8)
	c.Mounts = makeList[MountPlan](n)
	for range n {
		c.Mounts = append(c.Mounts, MountPlan{Dest: d.str(), Type: d.str(), Source: d.str(), Flags: uintptr(d.uint()), Data: d.str(), SrcFD: d.fd(), Scratch: d.bool(), Devices: d.bool()})
	}
	c.MaskedPaths = d.strs()
	c.ReadonlyPaths = d.strs()
	if n = d.count(2); n > 0 {
		c.Sysctl = make(map[string]string, n)
		for range n {
			k := d.str()
			c.Sysctl[k] = d.str()
		}
	}
	n = d.count(3)
	c.Files = makeList[FilePlan](n)
	for range n {
		c.Files = append(c.Files, FilePlan{Dest: d.str(), Content: d.str(), SrcFD: d.fd()})
	}
	n = d.count(3)
	c.Cgroups = makeList[CgroupView](n)
	for range n {
		c.Cgroups = append(c.Cgroups, CgroupView{Name: d.str(), Unified: d.bool(), Options: d.str()})
	}
	d.process(&c.Process)
	c.NetJoined = d.bool()
	c.RootfsFD = d.fd()
	c.FifoFD = d.fd()
	c.MaskDirFD = d.fd()
	c.CgroupSkelFD = d.fd()
	c.WritableRoot = d.bool()
	return c
}

func (e *encoder) process(p *ProcessPlan) {
	e.strs(p.Args)
	e.strs(p.Env)
	e.str(p.Cwd)
	e.uint(uint64(p.UID))
	e.uint(uint64(p.GID))
	e.uint(uint64(len(p.Groups)))
	for _, g := range p.Groups {
		e.uint(uint64(g))
	}
	e.uint(p.Caps)
	e.uint(uint64(len(p.Rlimits)))
	for _, rl := range p.Rlimits {
		e.int(int64(rl.Resource))
		e.uint(rl.Soft)
		e.uint(rl.Hard)
	}
	e.bool(p.Terminal)
	e.uint(uint64(p.Rows))
	e.uint(uint64(p.Cols))
	e.bool(p.OOMScoreAdj != nil)
	if p.OOMScoreAdj != nil {
		e.int(int64(*p.OOMScoreAdj))
	}
	e.bool(p.MAC.Layers.SELinux)
	e.bool(p.MAC.Layers.AppArmor)
	e.int(int64(p.MAC.Layers.LandlockABI))
	e.str(p.MAC.SELinux.Process)
	e.str(p.MAC.SELinux.Mount)
	e.str(p.MAC.AppArmor)
	e.str(p.Landlock.Root)
	e.strs(p.Landlock.Writable)
	e.strs(p.Landlock.WritableExec)
	e.bool(p.Landlock.WritableRoot)
	e.uint(uint64(len(p.Seccomp)))
	for _, s := range p.Seccomp {
		e.str(s.Digest)
		e.uint(uint64(s.Flags))
		e.bytes(s.BPF)
	}
}

func (d *decoder) process(p *ProcessPlan) {
	p.Args = d.strs()
	p.Env = d.strs()
	p.Cwd = d.str()
	p.UID = uint32(d.uintN(math.MaxUint32))
	p.GID = uint32(d.uintN(math.MaxUint32))
	n := d.count(1)
	p.Groups = makeList[uint32](n)
	for range n {
		p.Groups = append(p.Groups, uint32(d.uintN(math.MaxUint32)))
	}
	p.Caps = d.uint()
	n = d.count(3)
	p.Rlimits = makeList[RlimitPlan](n)
	for range n {
		p.Rlimits = append(p.Rlimits, RlimitPlan{Resource: d.intN(), Soft: d.uint(), Hard: d.uint()})
	}
	p.Terminal = d.bool()
	p.Rows = uint16(d.uintN(math.MaxUint16))
	p.Cols = uint16(d.uintN(math.MaxUint16))
	if d.bool() {
		v := d.intN()
		p.OOMScoreAdj = &v
	}
	p.MAC = macexec.Container{
		Layers:   macexec.Layers{SELinux: d.bool(), AppArmor: d.bool(), LandlockABI: d.intN()},
		SELinux:  macexec.SELinuxLabels{Process: d.str(), Mount: d.str()},
		AppArmor: d.str(),
	}
	p.Landlock = landlock.Rules{Root: d.str(), Writable: d.strs(), WritableExec: d.strs(), WritableRoot: d.bool()}
	n = d.count(3)
	p.Seccomp = makeList[SeccompBlob](n)
	for range n {
		p.Seccomp = append(p.Seccomp, SeccompBlob{Digest: d.str(), Flags: uint(d.uint()), BPF: d.bytes()})
	}
}

// encoder appends a message body.
type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bytes(p []byte) {
	e.uint(uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) strs(l []string) {
	e.uint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

// decoder reads a message body; the first error sticks, and every later read returns zero.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated message")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uintN reads an unsigned integer no larger than max.
func (d *decoder) uintN(max uint64) uint64 {
	v := d.uint()
	if v > max {
		d.fail(fmt.Errorf("value %d exceeds %d", v, max))
		return 0
	}
	return v
}

// intN reads a signed integer that fits an int32 (descriptors, resources, scores, ABI versions).
func (d *decoder) intN() int {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(fmt.Errorf("value %d out of range", v))
		return 0
	}
	return int(v)
}

// fd reads a donated descriptor's index (-1 for none).
func (d *decoder) fd() int { return d.intN() }

func (d *decoder) bool() bool {
	if len(d.b) == 0 {
		d.fail(errShort)
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail(fmt.Errorf("boolean byte %d", v))
		return false
	}
	return v == 1
}

// makeList returns room for a list of n elements (nil when empty): each list is allocated once, at
// the length its count says, not grown element by element (which allocated about 70 times a
// frame's size for a frame of empty elements).
func makeList[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

// count reads a list's length, each element at least min bytes long, and refuses one the rest
// of the body cannot hold.
func (d *decoder) count(min int) int {
	n := d.uint()
	if n > uint64(len(d.b)/min) {
		d.fail(fmt.Errorf("list of %d exceeds the %d bytes left", n, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *decoder) raw() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%d-byte string exceeds the %d bytes left", n, len(d.b)))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.raw()) }

// bytes reads a byte string into its own copy (nil when empty).
func (d *decoder) bytes() []byte {
	p := d.raw()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) strs() []string {
	n := d.count(1)
	out := makeList[string](n)
	for range n {
		out = append(out, d.str())
	}
	return out
}
