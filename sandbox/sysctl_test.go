package sandbox

import (
	"errors"
	"strings"
	"testing"
)

func TestClampPingGroupRange(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0 2147483647", "0 65535"}, // Docker's value
		{"0 65535", "0 65535"},
		{"100 200", "100 200"},
		{"1000 4294967294", "1000 65535"},
		{"1 0", "1 0"},         // empty: nobody, as asked
		{"70000 80000", "1 0"}, // wholly unmapped: nobody
		{"0\t2147483647", "0 65535"},
	} {
		got, err := clampPingGroupRange(c.in, 65536)
		if err != nil || got != c.want {
			t.Errorf("clamp(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0", "0 1 2", "-1 5", "a b", "0 4294967296"} {
		if _, err := clampPingGroupRange(bad, 65536); !errors.Is(err, ErrFloor) {
			t.Errorf("clamp(%q): %v, want a floor refusal", bad, err)
		}
	}
}

// TestFloorClampsPingGroupRange: Docker's ping_group_range would fail with EINVAL inside the user
// namespace; the floor limits it to the mapped gids and records the raise.
func TestFloorClampsPingGroupRange(t *testing.T) {
	r := floorRuntime(t)
	in := floorSpec()
	in.Linux.Sysctl = map[string]string{pingGroupRange: "0 2147483647", "net.ipv4.ip_forward": "1"}
	eff, raises, err := floored(r, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := eff.Linux.Sysctl[pingGroupRange]; got != "0 65535" {
		t.Fatalf("effective %s = %q", pingGroupRange, got)
	}
	if in.Linux.Sysctl[pingGroupRange] != "0 2147483647" {
		t.Fatal("Floor modified its input")
	}
	if !hasRaise(raises, "linux.sysctl["+pingGroupRange+"]", "0 65535") {
		t.Fatalf("no raise recorded: %+v", raises)
	}
	if eff.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
		t.Fatal("other sysctls changed")
	}
}

// TestPingGroupRangeDockerValue: with Docker's value the container starts, and sees the clamp.
func TestPingGroupRangeDockerValue(t *testing.T) {
	needRoot(t)
	leakCheck(t, "ping1")
	r := newTestRuntime(t)
	bundle, spec := busyboxBundle(t)
	spec.Linux.Sysctl = map[string]string{pingGroupRange: "0 2147483647"}
	spec.Process.Args = []string{"/bin/cat", "/proc/sys/net/ipv4/ping_group_range"}
	code, out, errOut := run(t, r, "ping1", bundle, spec)
	if code != 0 || strings.Join(strings.Fields(out), " ") != "0 65535" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
}
