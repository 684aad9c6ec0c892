package seccomp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/profiles"
)

// cacheFormat changes whenever the entry layout or the compiler's choices change, so old entries
// are simply never looked up again.
const cacheFormat = "bulwark-seccomp-v3"

// cacheEntry is one compiled program on disk (entry.go writes and reads it). Its SHA-256 guards
// against torn or corrupted files; the cache directory lives under the runtime's state root,
// which is trusted like the runtime binary itself.
type cacheEntry struct {
	Format     string
	Digest     string
	Libseccomp string
	Arch       string
	Flags      uint
	Notes      []string
	BPF        []byte
}

// A Compiler compiles a profile on a cache miss: Helper in the runtime (the bulwark-seccomp
// binary, the only one that links libseccomp), the compiler package itself in tests.
type Compiler func(p *specs.LinuxSeccomp) (*Program, error)

// CachedCompile returns the compiled program for p from cacheDir, compiling it with compile and
// storing it on a miss. Entries are keyed by profile digest, libseccomp version and
// architecture. A corrupt or mismatching entry is recompiled and replaced; a failure to store is
// returned, since a cache the runtime cannot write would silently cost every start a compile.
func CachedCompile(cacheDir string, p *specs.LinuxSeccomp, compile Compiler) (*Program, error) {
	if p == nil {
		return nil, errors.New("cached compile seccomp: nil profile")
	}
	digest, err := profiles.SeccompDigest(p)
	if err != nil {
		return nil, err
	}
	want, path := cacheKey(cacheDir, digest)
	if prog, ok := readEntry(path, want); ok {
		return prog, nil
	}
	prog, err := compile(p)
	if err != nil {
		return nil, err
	}
	if prog.Digest != digest {
		return nil, fmt.Errorf("compile seccomp: the compiler compiled profile %s, not %s", prog.Digest, digest)
	}
	want.Flags, want.Notes, want.BPF = prog.Flags, prog.Notes, prog.Bytes()
	if err := writeEntry(cacheDir, path, want); err != nil {
		return nil, err
	}
	return prog, nil
}

// Cached returns the program cached in cacheDir for the profile whose digest
// (profiles.SeccompDigest) is digest, as CachedCompile would on a hit, without the profile: a
// caller that knows a profile's digest beforehand (the floor's default allowlist) builds and
// digests the profile only on a miss. ok is false on a miss or a corrupt or mismatching entry.
func Cached(cacheDir, digest string) (prog *Program, ok bool) {
	want, path := cacheKey(cacheDir, digest)
	return readEntry(path, want)
}

// cacheKey is the entry a program compiled from the profile of that digest must match, and
// its file in cacheDir.
func cacheKey(cacheDir, digest string) (cacheEntry, string) {
	want := cacheEntry{Format: cacheFormat, Digest: digest, Libseccomp: libseccomp, Arch: runtime.GOARCH}
	keySum := sha256.Sum256([]byte(want.Format + "\x00" + want.Digest + "\x00" + want.Libseccomp + "\x00" + want.Arch))
	return want, filepath.Join(cacheDir, hex.EncodeToString(keySum[:16])+".entry")
}

// readEntry returns the cached program if the file exists and is intact and matches want.
func readEntry(path string, want cacheEntry) (*Program, bool) {
	// O_NOFOLLOW: the entry must be a file in the cache directory, not a link planted elsewhere.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	data, ok := readAll(fd)
	if !ok {
		return nil, false
	}
	e, ok := parseEntry(data)
	if !ok || e.Format != want.Format || e.Digest != want.Digest || e.Libseccomp != want.Libseccomp || e.Arch != want.Arch {
		return nil, false
	}
	prog, err := FromBytes(e.Digest, e.BPF)
	if err != nil {
		return nil, false
	}
	prog.Flags, prog.Notes = e.Flags, e.Notes
	return prog, true
}

// maxEntry bounds what readAll reads: a program of the kernel's most instructions and its notes
// take far less.
const maxEntry = 1 << 20

// readAll reads the file open as fd, of the size fstat gives, into one buffer; ok is false on any
// error, an empty or oversized file or one shorter than its size (torn).
func readAll(fd int) (data []byte, ok bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Size <= 0 || st.Size > maxEntry {
		return nil, false
	}
	data = make([]byte, st.Size)
	for off := 0; off < len(data); {
		n, err := unix.Pread(fd, data[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return nil, false
		}
		off += n
	}
	return data, true
}

// writeEntry stores e atomically: a reader sees the old entry, no entry, or the whole new one.
func writeEntry(dir, path string, e cacheEntry) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seccomp cache: create %s: %w", dir, err)
	}
	if err := atomicfile.Write(path, e.marshal(), atomicfile.Options{Sync: true}); err != nil {
		return fmt.Errorf("seccomp cache: install %s: %w", path, err)
	}
	return nil
}
