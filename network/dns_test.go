package network

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// The resolver answers A for its own network's containers (NAME, NAME.NETWORK, any case, and
// their aliases), an
// empty answer for their other record types, and REFUSED for every other name, a container of
// another network of the tenant included.
func TestResolverAnswers(t *testing.T) {
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
	r := &resolver{m: m, n: web}
	for _, c := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		ip    string
	}{
		{"srv.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.209.0.2"},
		{"SRV.web.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.209.0.2"},
		{"srv.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, ""},
		{"db.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.209.0.3"},
		{"cache.web.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.209.0.3"},
		{"0123abcd.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.209.0.3"},
		{"elsewhere.", dnsmessage.TypeA, dnsmessage.RCodeRefused, ""},
		{"far.", dnsmessage.TypeA, dnsmessage.RCodeRefused, ""},
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeRefused, ""},
	} {
		q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true}, Questions: []dnsmessage.Question{
			{Name: dnsmessage.MustNewName(c.name), Type: c.typ, Class: dnsmessage.ClassINET}}}
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var reply dnsmessage.Message
		if err := reply.Unpack(r.answer(b)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ""
		if len(reply.Answers) == 1 {
			a := reply.Answers[0].Body.(*dnsmessage.AResource).A
			got = netip.AddrFrom4(a).String()
		}
		if reply.Header.ID != 7 || !reply.Header.Response || reply.Header.RCode != c.rcode || got != c.ip || len(reply.Answers) > 1 {
			t.Errorf("%s %v: rcode %v answers %v", c.name, c.typ, reply.Header.RCode, reply.Answers)
		}
	}
	if r.answer([]byte("junk")) != nil {
		t.Error("a malformed query was answered")
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
	needed, unlock, err := m.resolverNeeded("a", "web")
	if err != nil || !needed {
		t.Fatalf("with a container attached: needed %v, %v", needed, err)
	}
	unlock()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	needed, unlock, err = m.resolverNeeded("a", "web")
	if err != nil || needed {
		t.Fatalf("with the state root gone: needed %v, %v", needed, err)
	}
	unlock()
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the resolver's poll made %s anew (%v)", root, err)
	}
}
