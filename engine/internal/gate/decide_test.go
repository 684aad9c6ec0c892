package gate

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
)

// Policy is shown what the floor refused as it was asked, on top of the effective spec, and the
// floor's result itself is left as it is.
func TestAskedPutsRefusalsBack(t *testing.T) {
	eff := &specs.Spec{
		Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}},
			Sysctl:     map[string]string{"net.ipv4.ip_forward": "1"},
		},
	}
	res := &sandbox.FloorResult{Spec: eff, Refusals: []sandbox.Refusal{
		{Field: sandbox.RefusedCapability, Name: "CAP_NET_ADMIN"},
		{Field: sandbox.RefusedNamespace, Name: "network", Value: "/proc/1/ns/net"},
		{Field: sandbox.RefusedNamespace, Name: "time"},
		{Field: sandbox.RefusedSysctl, Name: "kernel.hostname", Value: "x"},
	}}
	a := asked(res)
	if got := a.Process.Capabilities.Bounding; !slices.Equal(got, []string{"CAP_CHOWN", "CAP_NET_ADMIN"}) {
		t.Errorf("capabilities %v", got)
	}
	want := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}, {Type: "time"}}
	if !slices.Equal(a.Linux.Namespaces, want) {
		t.Errorf("namespaces %v, want %v", a.Linux.Namespaces, want)
	}
	if a.Linux.Sysctl["kernel.hostname"] != "x" || a.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
		t.Errorf("sysctls %v", a.Linux.Sysctl)
	}
	if len(eff.Process.Capabilities.Bounding) != 1 || eff.Linux.Namespaces[1].Path != "" || len(eff.Linux.Sysctl) != 1 {
		t.Errorf("the effective spec was changed: %+v", eff)
	}
	if asked(&sandbox.FloorResult{Spec: eff}) != eff {
		t.Error("without refusals the effective spec itself is judged")
	}
}

// A pod's uid is kept only when it is 1 to 64 letters, digits and dashes, as the expression
// `^[A-Za-z0-9-]{1,64}$` it replaces said.
func TestPlainPodUID(t *testing.T) {
	want := regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	for _, uid := range []string{"", "a", "0f-A9", strings.Repeat("a", 64), strings.Repeat("a", 65), "a_b", "a/b",
		"../x", "é", "a\n", " a", "a b", "-", strings.Repeat("-", 64)} {
		if got := plainPodUID(uid); got != want.MatchString(uid) {
			t.Errorf("%q: %v, want %v", uid, got, !got)
		}
	}
}
