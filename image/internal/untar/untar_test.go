package untar

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent describes one tar entry of a test archive.
type ent struct {
	name, link string
	typ        byte
	mode       int64
	body       string
	size       int64 // when body is empty and size > 0, size zero bytes
	pax        map[string]string
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, ModTime: time.Unix(1e9, 0), PAXRecords: e.pax}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
			if e.body == "" {
				h.Size = e.size
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if e.body != "" {
				tw.Write([]byte(e.body))
			} else if e.size > 0 {
				tw.Write(make([]byte, e.size))
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandboxDir returns a destination inside a parent that holds a canary file an escape would hit.
func sandboxDir(t *testing.T) (parent, dest string) {
	parent = t.TempDir()
	dest = filepath.Join(parent, "layer")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "canary"), []byte("safe"), 0o644); err != nil {
		t.Fatal(err)
	}
	return parent, dest
}

func checkCanary(t *testing.T, parent string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parent, "canary"))
	if err != nil || string(b) != "safe" {
		t.Fatalf("canary outside the layer changed: %q %v", b, err)
	}
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if e.Name() != "canary" && e.Name() != "layer" {
			t.Fatalf("file created outside the layer: %s", e.Name())
		}
	}
}

func opts() Options { return Options{Chown: os.Geteuid() == 0} }

// TestHostileCorpus: every archive here must be refused with the named error and touch nothing
// outside the destination.
func TestHostileCorpus(t *testing.T) {
	cases := []struct {
		name string
		tar  []byte
		opt  func(*Options)
		want error
	}{
		{"dotdot", mkTar(t, ent{name: "../canary", typ: tar.TypeReg, body: "pwned"}), nil, ErrTraversal},
		{"dotdot-deep", mkTar(t, ent{name: "a/../../canary", typ: tar.TypeReg, body: "pwned"}), nil, ErrTraversal},
		{"symlink-escape-then-write", mkTar(t,
			ent{name: "esc", typ: tar.TypeSymlink, link: ".."},
			ent{name: "esc/canary", typ: tar.TypeReg, body: "pwned"}), nil, ErrSymlinkPath},
		{"absolute-symlink-then-write", mkTar(t,
			ent{name: "etc", typ: tar.TypeSymlink, link: "/"},
			ent{name: "etc/pwned", typ: tar.TypeReg, body: "x"}), nil, ErrSymlinkPath},
		{"symlink-dir-inside-then-write", mkTar(t,
			ent{name: "d", typ: tar.TypeDir, mode: 0o755},
			ent{name: "l", typ: tar.TypeSymlink, link: "d"},
			ent{name: "l/f", typ: tar.TypeReg, body: "x"}), nil, ErrSymlinkPath},
		{"hardlink-escape", mkTar(t, ent{name: "h", typ: tar.TypeLink, link: "../canary"}), nil, ErrHardlink},
		{"hardlink-absolute-host-file", mkTar(t, ent{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}), nil, ErrHardlink},
		{"hardlink-via-symlink", mkTar(t,
			ent{name: "s", typ: tar.TypeSymlink, link: "/etc"},
			ent{name: "h", typ: tar.TypeLink, link: "s/passwd"}), nil, ErrHardlink},
		{"char-device", mkTar(t, ent{name: "dev/mem", typ: tar.TypeChar}), nil, ErrDevice},
		{"block-device", mkTar(t, ent{name: "sda", typ: tar.TypeBlock}), nil, ErrDevice},
		{"fifo", mkTar(t, ent{name: "fifo", typ: tar.TypeFifo}), nil, ErrDevice},
		{"bomb-bytes", mkTar(t, ent{name: "big", typ: tar.TypeReg, size: 1 << 20}),
			func(o *Options) { o.MaxBytes = 1 << 19 }, ErrLimit},
		{"bomb-entries", mkTar(t, ent{name: "a", typ: tar.TypeReg, body: "1"}, ent{name: "b", typ: tar.TypeReg, body: "2"},
			ent{name: "c", typ: tar.TypeReg, body: "3"}), func(o *Options) { o.MaxEntries = 2 }, ErrLimit},
		{"whiteout-dotdot", mkTar(t, ent{name: "a/.wh...", typ: tar.TypeReg}), nil, ErrUnsupported},
		// A non-ASCII name is written as a PAX "path" record, which overrides the ustar name.
		{"pax-path-traversal", mkTar(t, ent{name: "../cänary", typ: tar.TypeReg, body: "x"}), nil, ErrTraversal},
		{"gnu-long-name-traversal", mkTar(t, ent{name: strings.Repeat("a/", 60) + strings.Repeat("../", 61) + "canary", typ: tar.TypeReg, body: "x"}), nil, ErrTraversal},
		{"symlink-chain-escape", mkTar(t,
			ent{name: "b", typ: tar.TypeSymlink, link: "../.."},
			ent{name: "a", typ: tar.TypeSymlink, link: "b"},
			ent{name: "a/x", typ: tar.TypeReg, body: "x"}), nil, ErrSymlinkPath},
		{"dir-replaced-by-symlink", mkTar(t,
			ent{name: "d/", typ: tar.TypeDir, mode: 0o755},
			ent{name: "d", typ: tar.TypeSymlink, link: ".."},
			ent{name: "d/canary", typ: tar.TypeReg, body: "pwned"}), nil, ErrSymlinkPath},
		{"hardlink-then-symlink-dir", mkTar(t,
			ent{name: "s", typ: tar.TypeSymlink, link: ".."},
			ent{name: "h", typ: tar.TypeLink, link: "s/canary"}), nil, ErrHardlink},
		{"big-file", mkTar(t, ent{name: "huge", typ: tar.TypeReg, size: 2 << 20}),
			func(o *Options) { o.MaxBytes = 1 << 20 }, ErrLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent, dest := sandboxDir(t)
			o := opts()
			if c.opt != nil {
				c.opt(&o)
			}
			_, err := Extract(bytes.NewReader(c.tar), dest, o)
			if !errors.Is(err, c.want) {
				t.Fatalf("got error %v, want %v", err, c.want)
			}
			checkCanary(t, parent)
		})
	}
}

// TestSymlinkReplacedNotFollowed: a regular file entry over an earlier symlink replaces the
// symlink; the content never goes through it (the docker cp / CVE-2018-15664 shape).
func TestSymlinkReplacedNotFollowed(t *testing.T) {
	parent, dest := sandboxDir(t)
	data := mkTar(t,
		ent{name: "f", typ: tar.TypeSymlink, link: "../canary"},
		ent{name: "f", typ: tar.TypeReg, body: "pwned"},
		ent{name: "g", typ: tar.TypeSymlink, link: "/etc/hostname"},
		ent{name: "g", typ: tar.TypeReg, body: "pwned"})
	if _, err := Extract(bytes.NewReader(data), dest, opts()); err != nil {
		t.Fatal(err)
	}
	checkCanary(t, parent)
	for _, n := range []string{"f", "g"} {
		st, err := os.Lstat(filepath.Join(dest, n))
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("%s: %v %v", n, st, err)
		}
	}
}

func TestExtractOrdinary(t *testing.T) {
	parent, dest := sandboxDir(t)
	data := mkTar(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "bin/sh", typ: tar.TypeReg, mode: 0o755, body: "#!"},
		ent{name: "bin/su", typ: tar.TypeReg, mode: 0o4755, body: "su"},
		ent{name: "bin/sh2", typ: tar.TypeLink, link: "bin/sh"},
		ent{name: "/etc/abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
		ent{name: "deep/implied/file", typ: tar.TypeReg, body: "x"},
		ent{name: "x", typ: tar.TypeReg, body: "1", pax: map[string]string{
			"SCHILY.xattr.user.ok": "v", "SCHILY.xattr.security.capability": "cap", "SCHILY.xattr.trusted.x": "t",
			"SCHILY.xattr.user.overlay.redirect": "/etc"}},
		ent{name: "x", typ: tar.TypeReg, body: "second"}, // later duplicate wins
	)
	rep, err := Extract(bytes.NewReader(data), dest, opts())
	if err != nil {
		t.Fatal(err)
	}
	checkCanary(t, parent)
	st, err := os.Stat(filepath.Join(dest, "bin/su"))
	if err != nil || st.Mode()&os.ModeSetuid != 0 {
		t.Fatalf("setuid not stripped: %v %v", st.Mode(), err)
	}
	if len(rep.StrippedSetuid) != 1 || rep.StrippedSetuid[0] != "bin/su" {
		t.Fatalf("stripped setuid not recorded: %v", rep.StrippedSetuid)
	}
	if l, _ := os.Readlink(filepath.Join(dest, "etc/abs")); l != "/etc/passwd" {
		t.Fatalf("symlink target %q", l)
	}
	a, _ := os.Stat(filepath.Join(dest, "bin/sh"))
	b, _ := os.Stat(filepath.Join(dest, "bin/sh2"))
	if !os.SameFile(a, b) {
		t.Fatal("hardlink not linked")
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "x")); string(got) != "second" {
		t.Fatalf("duplicate entry: %q", got)
	}
	if len(rep.DroppedXattrs) != 3 {
		t.Fatalf("dropped xattrs: %v", rep.DroppedXattrs)
	}
	if st, _ := os.Stat(filepath.Join(dest, "bin")); st.ModTime().Unix() != 1e9 {
		t.Fatalf("dir mtime %v", st.ModTime())
	}
}

func TestWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts need CAP_MKNOD and trusted xattrs (root)")
	}
	_, dest := sandboxDir(t)
	data := mkTar(t,
		ent{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "etc/.wh.shadow", typ: tar.TypeReg},
		ent{name: "var/.wh..wh..opq", typ: tar.TypeReg},
		ent{name: "var/keep", typ: tar.TypeReg, body: "k"},
	)
	rep, err := Extract(bytes.NewReader(data), dest, opts())
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dest, "etc/shadow"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout not a 0/0 char device: %+v %v", st, err)
	}
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(dest, "var"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque xattr: %q %v", buf[:n], err)
	}
	if rep.Whiteouts != 1 || rep.OpaqueDirs != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// FuzzExtract: no input may panic or create anything outside the destination.
func FuzzExtract(f *testing.F) {
	f.Add(mkTar(f, ent{name: "a/b", typ: tar.TypeReg, body: "x"}, ent{name: "l", typ: tar.TypeSymlink, link: "../.."}))
	f.Add(mkTar(f, ent{name: "s", typ: tar.TypeSymlink, link: "/"}, ent{name: "s/x", typ: tar.TypeReg, body: "x"}))
	f.Add(mkTar(f, ent{name: "h", typ: tar.TypeLink, link: "../canary"}, ent{name: "d/.wh.x", typ: tar.TypeReg}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, dest := sandboxDir(t)
		o := Options{MaxBytes: 1 << 20, MaxEntries: 1000, Whiteouts: WhiteoutPlain}
		Extract(bytes.NewReader(data), dest, o)
		checkCanary(t, parent)
		filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
			if err == nil && !strings.HasPrefix(p, dest) {
				t.Fatalf("walked outside: %s", p)
			}
			return nil
		})
	})
}
