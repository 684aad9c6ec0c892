package engine

import (
	"reflect"
	"testing"

	"bulwark.dev/bulwark/network"
)

// -p is read as docker run reads it, except that an omitted host address is loopback (policy
// decides which addresses a tenant may publish on); anything else is refused, not guessed.
func TestParsePublish(t *testing.T) {
	got, err := parsePublish([]string{"8080:80", "0.0.0.0:5353:53/udp", "10.0.0.1:9000:9000/tcp"})
	want := []network.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostIP: "0.0.0.0", HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
		{HostIP: "10.0.0.1", HostPort: 9000, ContainerPort: 9000, Protocol: "tcp"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parsePublish = %+v, %v", got, err)
	}
	for _, bad := range []string{"80", "8080:80/sctp", "x:80", "8080:0", "70000:80", "::1:80:80", "host:80:80", "1-2:80", ":80"} {
		if _, err := parsePublish([]string{bad}); err == nil {
			t.Errorf("-p %s accepted", bad)
		}
	}
	for _, c := range []struct {
		req  Request
		want string
		err  bool
	}{
		{Request{}, "", false},
		{Request{Publish: []string{"8080:80"}}, network.DefaultName, false},
		{Request{Network: "none", Publish: []string{"8080:80"}}, "", true},
		{Request{Network: "host"}, "", true},
		{Request{Network: "web", Publish: []string{"8080:80"}}, "web", false},
	} {
		got, err := networkMode(&c.req)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%+v: %q, %v", c.req, got, err)
		}
	}
}
