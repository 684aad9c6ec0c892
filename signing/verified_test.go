package signing

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bulwark.dev/bulwark/signing/record"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"
)

// fresh is a new Client on f's cache, as the next CLI process opens one.
func (f *fixture) fresh(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(f.client.o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rootInode is the inode of the cache's root.json: go-tuf's full refresh writes it again (a new
// file renamed over it) every time; an answer from the record leaves it.
func rootInode(t *testing.T, c *Client) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(c.o.CacheDir, "root.json"), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestRecordAnswersNewClient: a new Client answers a target the last full refresh resolved from
// its record while the repository is unchanged, with the same target and role, and does a full
// refresh for a target not recorded and for a record that is not its own 0600 file.
func TestRecordAnswersNewClient(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.sign(t, "demo/app:1", manifest)
	want, err := f.client.Resolve("demo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(f.client.o.CacheDir, record.Name)
	if st, err := os.Stat(rec); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("record %v, %v", st, err)
	}
	c := f.fresh(t)
	ino := rootInode(t, c)
	got, err := c.Resolve("demo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want {
		t.Fatalf("from the record: %+v, want %+v", got, want)
	}
	if rootInode(t, c) != ino {
		t.Fatal("a full refresh ran although the record answered")
	}
	if _, err := f.fresh(t).Resolve("demo/app@" + want.Digest.String()); err != nil { // not recorded: full refresh
		t.Fatal(err)
	}
	if err := os.Chmod(rec, 0o644); err != nil {
		t.Fatal(err)
	}
	ino = rootInode(t, c)
	if _, err := f.fresh(t).Resolve("demo/app:1"); err != nil {
		t.Fatal(err)
	}
	if rootInode(t, c) == ino {
		t.Fatal("a record readable by others was used")
	}
}

// TestRecordFailsClosed: the record answers nothing once the repository changed (a revoked
// target stays revoked for the next Client), a newer root is published, or the metadata it
// vouched for expired.
func TestRecordFailsClosed(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		f := newFixture(t, InitOptions{})
		f.sign(t, "demo/app:1", manifest)
		if _, err := f.client.Resolve("demo/app:1"); err != nil {
			t.Fatal(err)
		}
		md, err := f.repo.LoadTargets(metadata.TARGETS)
		if err != nil {
			t.Fatal(err)
		}
		delete(md.Signed.Targets, "demo/app:1")
		if err := f.repo.commit(map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: md}, nil, false); err != nil {
			t.Fatal(err)
		}
		_, err = f.fresh(t).Resolve("demo/app:1")
		wantErr(t, err, ErrTargetNotFound)
	})
	t.Run("rotated", func(t *testing.T) {
		f := newFixture(t, InitOptions{})
		f.sign(t, "demo/app:1", manifest)
		if _, err := f.client.Resolve("demo/app:1"); err != nil {
			t.Fatal(err)
		}
		if err := f.repo.Rotate(metadata.ROOT); err != nil {
			t.Fatal(err)
		}
		c := f.fresh(t)
		if _, err := c.Resolve("demo/app:1"); err != nil {
			t.Fatal(err)
		}
		// A full refresh followed the rotation (the record would have left the old root cached).
		var cached struct {
			Signed struct{ Version int64 } `json:"signed"`
		}
		b, _ := os.ReadFile(filepath.Join(c.o.CacheDir, "root.json"))
		if err := json.Unmarshal(b, &cached); err != nil || cached.Signed.Version != 2 {
			t.Fatalf("cached root version %d (%v) after the rotation, want 2", cached.Signed.Version, err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		f := newFixture(t, InitOptions{})
		f.repo.Now = func() time.Time { return time.Now().Add(-24*time.Hour + 2*time.Second) }
		f.sign(t, "demo/app:1", manifest)
		if _, err := f.client.Resolve("demo/app:1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.fresh(t).Resolve("demo/app:1"); err != nil { // from the record
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		_, err := f.fresh(t).Resolve("demo/app:1")
		wantErr(t, err, ErrExpired)
	})
}
