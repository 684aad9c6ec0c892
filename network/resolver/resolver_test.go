package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// The resolver answers A for the names its network has, an empty answer for their other record
// types, REFUSED for every other name (it does not recurse), NOTIMP for another opcode or class,
// and nothing to what is not a query.
func TestAnswers(t *testing.T) {
	r := &resolver{subnet: netip.MustParsePrefix("10.209.0.0/24"), lookup: func(q string) (netip.Addr, bool) {
		if strings.EqualFold(q, "srv.") {
			return netip.MustParseAddr("10.209.0.2"), true
		}
		return netip.Addr{}, false
	}}
	for _, c := range []struct {
		name   string
		typ    dnsmessage.Type
		class  dnsmessage.Class
		opcode dnsmessage.OpCode
		rcode  dnsmessage.RCode
		ip     string
	}{
		{"srv.", dnsmessage.TypeA, dnsmessage.ClassINET, 0, dnsmessage.RCodeSuccess, "10.209.0.2"},
		{"SRV.", dnsmessage.TypeALL, dnsmessage.ClassINET, 0, dnsmessage.RCodeSuccess, "10.209.0.2"},
		{"srv.", dnsmessage.TypeAAAA, dnsmessage.ClassINET, 0, dnsmessage.RCodeSuccess, ""},
		{"example.com.", dnsmessage.TypeA, dnsmessage.ClassINET, 0, dnsmessage.RCodeRefused, ""},
		{"srv.", dnsmessage.TypeA, dnsmessage.ClassCHAOS, 0, dnsmessage.RCodeNotImplemented, ""},
		{"srv.", dnsmessage.TypeA, dnsmessage.ClassINET, 2, dnsmessage.RCodeNotImplemented, ""},
	} {
		q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true, OpCode: c.opcode}, Questions: []dnsmessage.Question{
			{Name: dnsmessage.MustNewName(c.name), Type: c.typ, Class: c.class}}}
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
			t.Errorf("%s %v %v: rcode %v answers %v", c.name, c.typ, c.class, reply.Header.RCode, reply.Answers)
		}
	}
	if r.answer([]byte("junk")) != nil {
		t.Error("a malformed query was answered")
	}
	resp := dnsmessage.Message{Header: dnsmessage.Header{Response: true}, Questions: []dnsmessage.Question{
		{Name: dnsmessage.MustNewName("srv."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	if b, _ := resp.Pack(); r.answer(b) != nil {
		t.Error("a response was answered")
	}
}

// TestAdmits: only sources inside the network's subnet are answered.
func TestAdmits(t *testing.T) {
	r := &resolver{subnet: netip.MustParsePrefix("10.209.0.0/24")}
	for addr, want := range map[string]bool{"10.209.0.5:5353": true, "10.209.1.5:5353": false, "127.0.0.1:53": false, "[::ffff:10.209.0.9]:1": true} {
		if got := r.admits(fakeAddr(addr)); got != want {
			t.Errorf("%s: admitted %v", addr, got)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "udp" }
func (a fakeAddr) String() string  { return string(a) }
