package network

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestLookup: a network's resolver finds its own network's containers (NAME, NAME.NETWORK, any
// case, and their aliases) and nothing else, a container of another network of the tenant
// included (package network/resolver answers from it).
func TestLookup(t *testing.T) {
	m := New(t.TempDir())
	web, err := m.Create("a", "web", netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Attachment{
		{Container: "srv", Network: "web", IP: netip.MustParseAddr("10.209.0.2")},
		{Container: "0123abcd", Network: "web", IP: netip.MustParseAddr("10.209.0.3"), Aliases: []string{"db", "Cache"}},
		{Container: "elsewhere", Network: "other", IP: netip.MustParseAddr("10.209.1.2"), Aliases: []string{"far"}},
	} {
		if err := writeJSON(m.attachPath("a", a.Container), a); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"srv.": "10.209.0.2", "SRV.web.": "10.209.0.2", "srv": "10.209.0.2", "db.": "10.209.0.3", "cache.web.": "10.209.0.3",
		"0123abcd.": "10.209.0.3", "elsewhere.": "", "far.": "", "example.com.": "", "srv.other.": "",
	} {
		ip, ok := m.Lookup(web, name)
		if got := map[bool]string{true: ip.String(), false: ""}[ok]; got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

// TestResolverNotNeededOnceRootRemoved: a resolver still polling after its state root was removed
// (a test's temporary root, a purged host) stops and does not make the networks directory anew,
// as it once did on its last poll.
func TestResolverNotNeededOnceRootRemoved(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	m := New(root)
	if _, err := m.Create("a", "web", netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	a := &Attachment{Container: "srv", Network: "web", IP: netip.MustParseAddr("10.209.0.2")}
	if err := writeJSON(m.attachPath("a", a.Container), a); err != nil {
		t.Fatal(err)
	}
	needed, unlock, err := m.ResolverNeeded("a", "web")
	if err != nil || !needed {
		t.Fatalf("with a container attached: needed %v, %v", needed, err)
	}
	unlock()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	needed, unlock, err = m.ResolverNeeded("a", "web")
	if err != nil || needed {
		t.Fatalf("with the state root gone: needed %v, %v", needed, err)
	}
	unlock()
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the resolver's poll made %s anew (%v)", root, err)
	}
}
