package document

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
)

// A one-shot runtime process (bulwark-runc create/run) spent most of its policy step parsing,
// compiling and preparing the policy before its single decision (under load, load ≈ 7–14 ms and
// prepare ≈ 27–64 ms against ≈ 3 ms for the decision itself). A decision is a pure function of
// the policy's modules and data and of the request document, as long as the policy calls no
// non-deterministic builtin (time, random, http…): the Cache keeps decisions under the state
// root, keyed by all three and by the binaries that made them, so that the same request under the
// same policy is answered without compiling it — and, in bulwark-runc, without linking OPA.
//
// Fail closed: an entry is used only if it is a regular file owned by this user, not readable or
// writable by anyone else, in a directory likewise owned and closed, and records exactly the key
// asked for (format, build, policy source digest, input digest) and a well-formed decision;
// anything else is a miss, and a miss is decided by the policy as before. Only the embedded
// policy and policy directories are cached (a directory's content is digested without parsing,
// again after its decision, and a decision is stored only if the two agree; the embedded policy
// is part of the build); a signed bundle is always loaded, so its rollback check runs on every
// request. Whether a decision may be stored at all (the policy is deterministic, it never reads
// the audit-only annotations left out of the key) is for the evaluator to say: it alone has
// parsed the policy.

// cacheFormat changes whenever the stored record or what a key covers changes.
const cacheFormat = "bulwark-decision-cache/4"

// Cache is the decision cache of one policy source, under one state root, for one build.
type Cache struct {
	dir    string
	build  string
	policy string // digest of the policy source's files
	source SourceOptions
	// auditOnly are annotation keys left out of the key where the policy never reads them
	// (key.go).
	auditOnly []string
	// dirfd is the entries' directory once Pin has opened it (-1: a lookup walks dir), and euid
	// this process's user, read then.
	dirfd, euid int
	// prefetched is the entry Prefetch read ahead from the slot named prefetchedSlot; hint is the
	// slot a lookup then hit instead, for SaveHint.
	prefetchedSlot string
	prefetched     cacheEntry
	hint           string
}

// hintFile, in a cache's directory, names the slot in which a pinned cache's lookup last found its
// entry (SaveHint), for the next process's Prefetch.
const hintFile = "hint"

type cacheEntry struct {
	Format   string   `json:"format"`
	Build    string   `json:"build"`
	Policy   string   `json:"policy"`
	Input    string   `json:"input"`
	Without  []string `json:"without,omitempty"` // annotations left out of Input (key.go)
	Decision Decision `json:"decision"`
}

// OpenCache returns the cache for the policy o selects as decided by build (BuildDigest: the
// binaries that evaluate, and whatever else they embed of the policy), or nil when its decisions
// are not cached (a bundle, no state root, no build, or a source that cannot be digested): the
// caller then has every request decided. auditOnly names annotations that only identify a
// request (key.go).
func OpenCache(o SourceOptions, build string, auditOnly ...string) *Cache {
	if o.StateRoot == "" || o.Bundle != "" || o.VerificationKeyFile != "" || build == "" {
		return nil
	}
	sum, err := sourceDigest(o)
	if err != nil {
		return nil
	}
	return &Cache{dir: filepath.Join(o.StateRoot, "policy", "decisions"), build: build, policy: sum, source: o, auditOnly: auditOnly, dirfd: -1}
}

// Pin opens the entries' directory for the lookups that follow, which then open their entry
// relative to it instead of walking the state root's path each time, and reads this process's
// user once: for a one-shot process (bulwark-runc), which pins before its request is known, in
// the background, this takes ≈ 5 µs of system calls off its one lookup. The directory is still
// checked (owned by this user, closed to others) at every lookup, through the descriptor. Nothing
// is pinned if the directory does not exist yet (a fresh state root: lookups miss) or cannot be
// opened as a directory without following a symbolic link; a lookup then goes by path as before.
// Close releases it. Pin is for the cache's first use: it must not run concurrently with lookups.
func (c *Cache) Pin() {
	fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	c.dirfd, c.euid = fd, os.Geteuid()
}

// Prefetch reads ahead, from a pinned cache's directory, the entry of the slot its lookups last
// hit (the hint SaveHint keeps), checked as a lookup checks an entry except for its input, which
// only the lookup knows: a lookup of that slot then uses it instead of reading the file. A
// one-shot process (bulwark-runc) calls it before its request is known, in the background, so
// that a request repeated under the same policy and build finds its decision without touching the
// file system on its path (≈ 20 µs of system calls and decoding); any other request reads its
// slot as before. The entry may be replaced between Prefetch and the lookup only by this user
// (the directory is closed to others), as it may between a lookup's read and its use. Nothing
// is prefetched from a cache that is not pinned, without a hint, or whose hinted entry does not
// check. It must not run concurrently with lookups.
func (c *Cache) Prefetch() {
	if c.dirfd < 0 {
		return
	}
	name, ok := c.readHint()
	if !ok {
		return
	}
	if e, err := c.readSlot(name); err == nil && c.usable(e) {
		c.prefetchedSlot, c.prefetched = name, e
	}
}

// readHint returns the slot name in the pinned directory's hint file, if it holds exactly one.
func (c *Cache) readHint() (string, bool) {
	fd, err := unix.Openat(c.dirfd, hintFile, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	var b [len("00.json") + 1]byte
	n, err := unix.Read(fd, b[:])
	if err != nil || n != len("00.json") || !slotNamed(b[:n]) {
		return "", false
	}
	return string(b[:n]), true
}

// slotNamed reports whether b is a slot's file name (slotName): two lowercase hex digits and
// ".json".
func slotNamed(b []byte) bool {
	for _, c := range b[:2] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return string(b[2:]) == ".json"
}

// SaveHint records in a pinned cache's directory the slot in which its lookup found its entry,
// when that was not the slot Prefetch had read (or a decision was stored since), for the next
// process's Prefetch. Best effort: a hint not written only costs the next request its read.
// Every hint has the same length, so one write at the start of the file replaces it (a reader
// that sees anything else ignores it). It must not run concurrently with lookups or Close.
func (c *Cache) SaveHint() {
	if c.dirfd < 0 || c.hint == "" {
		return
	}
	fd, err := unix.Openat(c.dirfd, hintFile, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	unix.Pwrite(fd, []byte(c.hint), 0) //nolint:errcheck // best effort
	unix.Close(fd)
	c.hint = ""
}

// Close releases what Pin opened; the cache goes on by path.
func (c *Cache) Close() {
	if c.dirfd >= 0 {
		unix.Close(c.dirfd)
		c.dirfd = -1
	}
}

// Lookup returns the cached decision of req, with its duration set to the lookup's; ok is false
// on any miss or doubt.
func (c *Cache) Lookup(req *Request) (d Decision, ok bool) {
	return c.LookupDigest(req, InputDigest(req))
}

// LookupDigest is Lookup for a caller that has req's digest (InputDigest) already: digesting the
// document is most of a lookup's own work.
func (c *Cache) LookupDigest(req *Request, digest string) (d Decision, ok bool) {
	start := time.Now()
	input, without := decisionKey(req, digest, c.auditOnly)
	if input == "" {
		return Decision{}, false
	}
	name := c.slotName(input)
	e, err := c.prefetched, error(nil)
	if name != c.prefetchedSlot {
		e, err = c.readSlot(name)
	}
	if err != nil || !c.usable(e) || e.Input != input || !slices.Equal(e.Without, without) {
		return Decision{}, false
	}
	if name != c.prefetchedSlot {
		c.hint = name
	}
	d = e.Decision
	d.Duration = time.Since(start)
	return d, true
}

// usable reports whether e was stored by this cache's build for its policy, in the current format,
// with a well-formed decision (whose input the lookup checks).
func (c *Cache) usable(e cacheEntry) bool {
	return e.Format == cacheFormat && e.Build == c.build && e.Policy == c.policy && wellFormed(e.Decision)
}

// Storable is what the evaluator that made a decision knows of its policy and the cache cannot:
// whether the policy calls a non-deterministic builtin anywhere, and whether it can read any of
// the given annotation keys (nil: assume it can).
type Storable struct {
	Deterministic bool
	Unread        func(keys []string) bool
}

// Store records d, the decision made on req, unless s says the policy may decide differently on
// the same input or its source changed since the cache was opened. It is keyed without the
// request's audit-only annotations only if s says the policy never reads them; otherwise by the
// whole document. Failing to store only costs the next request a full decision.
func (c *Cache) Store(req *Request, d Decision, s Storable) error {
	if !s.Deterministic || !wellFormed(d) {
		return nil
	}
	for _, r := range d.Reasons {
		if r.Code == CodePolicyError || r.Code == CodePolicyUndefined {
			return nil // an evaluation that failed (perhaps cancelled) is not the policy's answer
		}
	}
	full := InputDigest(req)
	input, without := decisionKey(req, full, c.auditOnly)
	if len(without) > 0 && (s.Unread == nil || !s.Unread(without)) {
		input, without = full, nil
	}
	if input == "" {
		return nil
	}
	if c.source.Dir != "" {
		if sum, err := sourceDigest(c.source); err != nil || sum != c.policy {
			return nil
		}
	}
	d.Duration = 0
	data, err := json.Marshal(cacheEntry{Format: cacheFormat, Build: c.build, Policy: c.policy, Input: input, Without: without, Decision: d})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("decision cache: %w", err)
	}
	if err := ownedAndClosed(c.dir, true, os.Geteuid()); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(c.dir, c.slotName(input)), data, atomicfile.Options{Perm: 0o600}); err != nil {
		return fmt.Errorf("decision cache: %w", err)
	}
	c.hint = c.slotName(input)
	return nil
}

// slotName is the file name of input's slot in the cache's directory. The slots bound the cache:
// an entry lives in the slot its key's first byte names (256 slots), a newer entry replaces the
// older, so requests that never repeat (a bundle directory per container) cost at most 256 small
// files.
func (c *Cache) slotName(input string) string {
	sum := sha256.Sum256([]byte(c.policy + "\x00" + input))
	return hex.EncodeToString(sum[:1]) + ".json"
}

// maxEntry bounds a cache entry read back: a larger file is a miss.
const maxEntry = 1 << 20

// smallEntry is the size of an entry read on the stack (a larger one is read on the heap).
const smallEntry = 1 << 10

// readSlot reads the entry in the slot named name (slotName). Its file is read through its
// descriptor with plain system calls: an *os.File registers with (and, the first in a process,
// sets up) the runtime's poller, for a file read once.
func (c *Cache) readSlot(name string) (cacheEntry, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	var (
		st  unix.Stat_t
		fd  int
		err error
	)
	euid := c.euid
	if c.dirfd >= 0 {
		// The pinned directory (Pin), checked as the path's would be.
		if err := unix.Fstat(c.dirfd, &st); err != nil {
			return cacheEntry{}, err
		}
		if err := checkOwned(&st, true, euid); err != nil {
			return cacheEntry{}, err
		}
		fd, err = unix.Openat(c.dirfd, name, flags, 0)
	} else {
		euid = os.Geteuid()
		if err := ownedAndClosed(c.dir, true, euid); err != nil {
			return cacheEntry{}, err
		}
		fd, err = unix.Open(filepath.Join(c.dir, name), flags, 0)
	}
	if err != nil {
		return cacheEntry{}, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return cacheEntry{}, err
	}
	if err := checkOwned(&st, false, euid); err != nil {
		return cacheEntry{}, err
	}
	if st.Size > maxEntry {
		return cacheEntry{}, errors.New("decision cache: entry too large")
	}
	// One read of one byte more than its size: a read of a regular file that returns less than it
	// asked for has reached its end, and a file that grew since its stat reads more and is a miss.
	// An entry is a few hundred bytes: it is read into the stack, whose pages are in use, not
	// into a fresh heap page the kernel's copy would fault in.
	var small [smallEntry]byte
	data := small[:]
	if st.Size+1 > smallEntry {
		data = make([]byte, st.Size+1)
	}
	data = data[:st.Size+1]
	n, err := unix.Read(fd, data)
	for err == unix.EINTR {
		n, err = unix.Read(fd, data)
	}
	if err != nil {
		return cacheEntry{}, err
	}
	if n != int(st.Size) {
		return cacheEntry{}, errors.New("decision cache: entry changed while read")
	}
	return decodeEntry(data[:n])
}

// CachedRecord is the audit record of a decision Lookup returned for req.
func CachedRecord(req *Request, d Decision) DecisionRecord {
	return CachedRecordDigest(req, InputDigest(req), d)
}

// CachedRecordDigest is CachedRecord for a caller that has req's digest already.
func CachedRecordDigest(req *Request, digest string, d Decision) DecisionRecord {
	return DecisionRecord{InputDigest: digest, Tenant: req.Tenant, Operation: req.Operation,
		Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision, Duration: d.Duration, Cached: true}
}

// ownedAndClosed checks path (not following a final symlink) is a directory (dir) or a regular
// file owned by euid, this process's user, that nobody else may write (a file: nor read).
func ownedAndClosed(path string, dir bool, euid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	return checkOwned(&st, dir, euid)
}

func checkOwned(st *unix.Stat_t, dir bool, euid int) error {
	want, mask := uint32(unix.S_IFREG), uint32(0o077)
	if dir {
		want, mask = unix.S_IFDIR, 0o022
	}
	switch {
	case st.Mode&unix.S_IFMT != want:
		return errors.New("decision cache: unexpected file type")
	case st.Uid != uint32(euid):
		return errors.New("decision cache: not owned by this user")
	case st.Mode&mask != 0:
		return errors.New("decision cache: open to other users")
	}
	return nil
}

// wellFormed is what the evaluator guarantees of a decision the policy made.
func wellFormed(d Decision) bool {
	if d.Reasons == nil || d.Allow && len(d.Reasons) > 0 || d.Revision == "" {
		return false
	}
	for _, r := range d.Reasons {
		if r.Code == "" {
			return false
		}
	}
	return true
}

// sourceDigest digests the files of the policy source o selects, without parsing any: a
// directory's tree (names, types, link targets, contents). The embedded default (which also
// supplies the modules of a data-only directory) is part of the build the cache is opened for.
func sourceDigest(o SourceOptions) (string, error) {
	if o.Dir == "" {
		return SourceEmbedded, nil
	}
	return TreeDigest(os.DirFS(o.Dir))
}

// TreeDigest digests every file of fsys: names, types, symlink targets and contents.
func TreeDigest(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%q %v\x00", path, d.Type())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%q\x00", target)
		case d.Type().IsRegular():
			data, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%d\x00", len(data))
			h.Write(data)
		case !d.IsDir():
			return fmt.Errorf("%s: not a regular file, directory or symlink", path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// BuildDigest identifies the binaries that decide: this process's executable file and each file
// in others (an evaluator it executes), by device, inode, size, change and modification time — so
// a decision is reused only by the builds that made it, even ones from an uncommitted tree (a
// rebuilt binary is another file, or the same one changed). Empty (nothing cached) when this
// process's file is unknown. The build's module versions were digested too once: reading them
// (debug.ReadBuildInfo) cost more than the rest of the key, and they name no build the file does not.
func BuildDigest(others ...*unix.Stat_t) string {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return ""
	}
	return BuildDigestOf(&self, others...)
}

// BuildDigestOf is BuildDigest for a caller that has this process's executable file's stat
// (self) already.
func BuildDigestOf(self *unix.Stat_t, others ...*unix.Stat_t) string {
	b := statIdentity(nil, self)
	for _, st := range others {
		b = statIdentity(append(b, 0), st)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// statIdentity appends what identifies a file's content: device, inode, size, change and
// modification time.
func statIdentity(b []byte, st *unix.Stat_t) []byte {
	for _, n := range []int64{int64(st.Dev), int64(st.Ino), st.Size, st.Ctim.Sec, st.Ctim.Nsec, st.Mtim.Sec, st.Mtim.Nsec} {
		b = append(strconv.AppendInt(b, n, 10), ' ')
	}
	return b
}
