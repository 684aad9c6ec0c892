package untar

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rawHeader is a ustar header block written by hand: archive/tar's writer produces neither PAX
// headers of our choosing nor sparse entries.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], "00000000000\x00")
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }

func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// sparseTar is a PAX (GNU sparse 1.0) archive of one file of apparent size size whose only
// data is frag at offset off: a few KB of archive for any size.
func sparseTar(name string, size, off int64, frag []byte) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(size))
	sparseMap := pad([]byte(fmt.Sprintf("1\n%d\n%d\n", off, len(frag))))
	body := append(sparseMap, pad(frag)...)
	var out []byte
	out = append(out, rawHeader("PaxHeaders/"+name, tar.TypeXHeader, int64(len(recs)))...)
	out = append(out, pad([]byte(recs))...)
	out = append(out, rawHeader("GNUSparseFile.0/"+name, tar.TypeReg, int64(len(sparseMap)+len(frag)))...)
	out = append(out, body...)
	return append(out, make([]byte, 1024)...)
}

func blocks(t *testing.T, p string) (size, allocated int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

// TestSparseFileStaysSparse is the image-bomb regression (issue 8 §5): a 3 KB archive of a
// 1 GiB sparse file used to become 1 GiB on disk.
func TestSparseFileStaysSparse(t *testing.T) {
	const size = 1 << 30
	frag := bytes.Repeat([]byte("data"), 1024)
	arch := sparseTar("lastlog", size, 512<<20, frag)
	if len(arch) > 8<<10 {
		t.Fatalf("test archive is %d bytes", len(arch))
	}
	dest := t.TempDir()
	rep, err := Extract(bytes.NewReader(arch), dest, Options{Whiteouts: WhiteoutPlain})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dest, "lastlog")
	sz, alloc := blocks(t, p)
	if sz != size || alloc > 64<<10 {
		t.Fatalf("size %d (want %d), %d bytes allocated (want a few KB)", sz, size, alloc)
	}
	if rep.Bytes != size {
		t.Errorf("report counts %d bytes of content, want %d", rep.Bytes, size)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(frag)+8)
	if _, err := f.ReadAt(got, 512<<20-4); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:4], make([]byte, 4)) || !bytes.Equal(got[4:4+len(frag)], frag) || !bytes.Equal(got[4+len(frag):], make([]byte, 4)) {
		t.Fatal("content around the data fragment differs")
	}
}

// TestZeroRunsBecomeHoles: a plain (non-sparse) entry of zeros, as a gzip bomb carries, takes
// no blocks; data between the zeros is kept exactly.
func TestZeroRunsBecomeHoles(t *testing.T) {
	body := make([]byte, 8<<20)
	copy(body[3<<20+17:], "middle")
	copy(body[len(body)-3:], "end")
	arch := mkTar(t, ent{name: "zeros", typ: tar.TypeReg, body: string(body)}, ent{name: "empty", typ: tar.TypeReg, size: 4 << 20})
	dest := t.TempDir()
	if _, err := Extract(bytes.NewReader(arch), dest, Options{Whiteouts: WhiteoutPlain}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, "zeros"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("content differs (%v)", err)
	}
	if _, alloc := blocks(t, filepath.Join(dest, "zeros")); alloc > 64<<10 {
		t.Errorf("8 MiB of mostly zeros allocates %d bytes", alloc)
	}
	if sz, alloc := blocks(t, filepath.Join(dest, "empty")); sz != 4<<20 || alloc != 0 {
		t.Errorf("4 MiB of zeros: size %d, %d bytes allocated", sz, alloc)
	}
}

// TestSparseContentLimit: holes take no disk, but reading them takes time, so a sparse entry's
// apparent size counts against MaxBytes (a 4 KB archive claiming 1 TiB is refused quickly).
func TestSparseContentLimit(t *testing.T) {
	arch := sparseTar("f", 1<<40, 0, bytes.Repeat([]byte{1}, 8192))
	_, err := Extract(bytes.NewReader(arch), t.TempDir(), Options{Whiteouts: WhiteoutPlain, MaxBytes: 1 << 20})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Fatalf("got %v, want the content limit", err)
	}
}
