package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/profiles"
)

// The floor's result says, as data, what it refuses (only what it refuses: the rest of the
// request is floored as usual), which seccomp programs load and which MAC layers apply.
func TestFloorResultIsComplete(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	set := []string{"CAP_CHOWN", "CAP_NET_RAW", "CAP_NET_ADMIN"}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}
	s.Linux.Namespaces[1] = specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/1/ns/net"}
	s.Linux.Sysctl = map[string]string{"kernel.hostname": "x", "net.ipv4.ip_forward": "1"}
	res, err := r.Floor(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []Refusal{
		{Field: RefusedCapability, Name: "CAP_NET_ADMIN"},
		{Field: RefusedNamespace, Name: "network", Value: "/proc/1/ns/net"},
		{Field: RefusedSysctl, Name: "kernel.hostname", Value: "x"},
	}
	if len(res.Refusals) != len(want) {
		t.Fatalf("refusals %+v, want %d", res.Refusals, len(want))
	}
	for _, w := range want {
		if !slices.ContainsFunc(res.Refusals, func(x Refusal) bool {
			return x.Field == w.Field && x.Name == w.Name && x.Value == w.Value && x.Reason != ""
		}) {
			t.Errorf("refusals %+v lack %+v", res.Refusals, w)
		}
	}
	if res.Err() == nil {
		t.Error("Err() is nil with refusals")
	}
	eff := res.Spec
	if got := eff.Process.Capabilities.Bounding; !slices.Equal(got, []string{"CAP_CHOWN"}) {
		t.Errorf("effective capabilities %v, want the grantable CAP_CHOWN only", got)
	}
	if _, ok := eff.Linux.Sysctl["kernel.hostname"]; ok || eff.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
		t.Errorf("effective sysctls %v", eff.Linux.Sysctl)
	}
	for _, ns := range eff.Linux.Namespaces {
		if ns.Path != "" {
			t.Errorf("effective spec joins %s", ns.Path)
		}
	}
	if len(res.Seccomp) != 1 || res.Seccomp[0].Source != "default" ||
		res.Seccomp[0].Digest != SeccompDigest(profiles.DefaultSeccomp()) || res.Seccomp[0].Digest != FloorExpected().SeccompDigest {
		t.Errorf("seccomp %+v, want the default allowlist", res.Seccomp)
	}
	if !slices.Equal(res.MAC, macLayers(hostLayers())) {
		t.Errorf("MAC %v, host %v", res.MAC, macLayers(hostLayers()))
	}

	// A spec profile is stacked on top.
	s = floorSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"ptrace"}, Action: specs.ActErrno}}}
	if res, err = r.Floor(s); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if len(res.Seccomp) != 2 || res.Seccomp[1].Source != "spec" || res.Seccomp[1].Rules != 1 {
		t.Errorf("seccomp %+v, want default then spec", res.Seccomp)
	}
}

// FloorExpected hands out copies: a scanner cannot change the floor.
func TestFloorExpectedIsACopy(t *testing.T) {
	e := FloorExpected()
	e.MaskedPaths[0] = "/changed"
	e.DefaultMounts[0].Options[0] = "changed"
	e.Namespaces[0] = "changed"
	f := FloorExpected()
	if f.MaskedPaths[0] == "/changed" || f.DefaultMounts[0].Options[0] == "changed" || f.Namespaces[0] == "changed" {
		t.Fatal("FloorExpected shares the floor's own values")
	}
	if len(f.Rlimits) != 3 || f.RlimitsMax["RLIMIT_NOFILE"] != maxNofile || !slices.Contains(f.Forbidden, "CAP_SYS_ADMIN") {
		t.Errorf("expected values %+v", f)
	}
}

// TestDefaultSeccompDescriptions: the default allowlist's descriptions kept in the source are
// what the embedded profile resolves to, for every architecture they name; when the profile
// changes, this test says what to write.
func TestDefaultSeccompDescriptions(t *testing.T) {
	raw := profiles.DefaultSeccompJSON()
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != defaultProfileSum {
		t.Errorf("the embedded profile's SHA-256 is %x: set defaultProfileSum to it and update defaultPrograms and refusedSockets", sum)
	}
	// The descriptions depend on the architecture only: no rule may depend on the kernel.
	if bytes.Contains(raw, []byte("minKernel")) {
		t.Error("the default profile has a minKernel rule: its digest depends on the kernel; drop defaultPrograms")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		p, err := profiles.ParseDockerSeccompWith(raw, profiles.ParseOptions{GOARCH: arch})
		if err != nil {
			t.Fatal(err)
		}
		want := SeccompProgram{Source: "default", Digest: SeccompDigest(p), DefaultAction: string(p.DefaultAction), Rules: len(p.Syscalls)}
		if got := defaultPrograms[arch]; got != want {
			t.Errorf("defaultPrograms[%q] = %#v, want %#v", arch, got, want)
		}
	}
	def := profiles.DefaultSeccomp()
	if got, want := defaultProgram().Digest, SeccompDigest(def); got != want {
		t.Errorf("default program digest %s, want %s", got, want)
	}
	if p := defaultProgram(); p.DefaultAction != string(def.DefaultAction) || p.Rules != len(def.Syscalls) {
		t.Errorf("default program %+v, want action %s and %d rules", p, def.DefaultAction, len(def.Syscalls))
	}
}

// A description kept for another profile is never used: describeDefault describes the profile
// itself unless the embedded profile's sum is the one the descriptions were computed from.
func TestDefaultSeccompDescriptionOfAnotherProfile(t *testing.T) {
	kept := defaultPrograms[runtime.GOARCH]
	if kept.Digest == "" {
		t.Skip("no kept description for " + runtime.GOARCH)
	}
	def := profiles.DefaultSeccomp()
	want := SeccompProgram{Source: "default", Digest: SeccompDigest(def), DefaultAction: string(def.DefaultAction), Rules: len(def.Syscalls)}
	if got := describeDefault(defaultProfileSum); got != want {
		t.Fatalf("describeDefault = %+v, want %+v", got, want)
	}
	stale := SeccompProgram{Source: "default", Digest: "sha256:stale", DefaultAction: "SCMP_ACT_ALLOW", Rules: 1}
	defaultPrograms[runtime.GOARCH] = stale
	t.Cleanup(func() { defaultPrograms[runtime.GOARCH] = kept })
	if got := describeDefault(defaultProfileSum); got != stale {
		t.Fatalf("describeDefault of the kept profile = %+v, want the kept description", got)
	}
	if got := describeDefault("0" + defaultProfileSum[1:]); got != want {
		t.Errorf("describeDefault of another profile = %+v, want %+v (described from the profile)", got, want)
	}
}
