package mac

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"bulwark.dev/bulwark/sandbox/internal/caps"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
)

func TestAppArmorProfile(t *testing.T) {
	name := AppArmorProfileName("web-1")
	if name != "bulwark-web-1" {
		t.Fatalf("profile name %q", name)
	}
	b, err := AppArmorProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	p := string(b)
	for _, want := range []string{
		"#include <tunables/global>\n",
		"\nprofile bulwark-web-1 flags=(attach_disconnected,mediate_deleted) {\n",
		"  #include <abstractions/base>\n",
		"  deny network raw,\n",
		"  deny network packet,\n",
		"  deny mount,\n",
		"  deny remount,\n",
		"  deny umount,\n",
		"  deny pivot_root,\n",
		"  signal (receive) peer=unconfined,\n",
		"  signal (send,receive) peer=bulwark-web-1,\n",
		"  deny ptrace (trace,tracedby),\n",
		"  ptrace (read,readby) peer=bulwark-web-1,\n",
		"  deny @{PROC}/* w,\n",
		"  deny @{PROC}/sys/[^k]** w,\n",
		"  deny @{PROC}/sysrq-trigger rwklx,\n",
		"  deny @{PROC}/kcore rwklx,\n",
		"  deny @{PROC}/[0-9]*/attr/** w,\n",
		"  deny /sys/fs/cgroup/**/release_agent w,\n",
		"  deny /sys/firmware/** rwklx,\n",
		"  deny /sys/kernel/security/** rwklx,\n",
		"  deny /dev/mem rwklx,\n",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("profile lacks %q", want)
		}
	}
	for _, c := range caps.Forbidden.Caps() {
		rule := "  deny capability " + strings.ToLower(strings.TrimPrefix(c.String(), "CAP_")) + ",\n"
		if !strings.Contains(p, rule) {
			t.Errorf("profile lacks %q", rule)
		}
	}
	for _, c := range caps.Grantable.Caps() {
		if strings.Contains(p, "deny capability "+strings.ToLower(strings.TrimPrefix(c.String(), "CAP_"))+",") {
			t.Errorf("profile denies grantable %v", c)
		}
	}
	if strings.Count(p, "{{") != 0 || strings.Count(p, "{\n") != 1 || !strings.HasSuffix(p, "}\n") {
		t.Errorf("profile is not one closed block:\n%s", p)
	}
	if !strings.HasPrefix(p, "#include") {
		t.Errorf("template comment leaked into the profile:\n%.200s", p)
	}
	if path, data := macexec.AppArmorExecAttr(name); string(data) != "exec bulwark-web-1" ||
		(path != "/proc/thread-self/attr/apparmor/exec" && path != "/proc/thread-self/attr/exec") {
		t.Errorf("exec attr = %s %q", path, data)
	}
	// If the parser is installed, the profile must compile (without loading it into the kernel).
	if _, err := exec.LookPath(parser); err == nil {
		cmd := exec.Command(parser, "-QK", "-o", "/dev/null")
		cmd.Stdin = strings.NewReader(p)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s rejects the profile: %v\n%s", parser, err, out)
		}
	}
}

// TestAppArmorEnforcement loads a profile, runs a child that applies it on exec, and reads the
// confinement the kernel reports for the exec'd program.
func TestAppArmorEnforcement(t *testing.T) {
	if !macexec.AppArmorEnabled() {
		t.Skip("AppArmor is not enabled on this host: profile loading and attachment untested")
	}
	if os.Geteuid() != 0 {
		t.Skip("loading AppArmor profiles needs root")
	}
	name := AppArmorProfileName(fmt.Sprintf("test-%d", os.Getpid()))
	p, err := AppArmorProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := LoadAppArmor(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnloadAppArmor(name); err != nil {
			t.Error(err)
		}
	})
	out := runChild(t, "apparmor:"+name)
	if want := name + " (enforce)"; strings.TrimSpace(out) != want {
		t.Fatalf("exec'd program confined by %q, want %q", out, want)
	}
}

func TestAppArmorProfileNameInjection(t *testing.T) {
	for _, bad := range []string{"", "a b", "x{", "a,b", "a\nb", "-x", "a}", "a/b", `a"b`, strings.Repeat("a", 201)} {
		if _, err := AppArmorProfile(bad); err == nil {
			t.Errorf("AppArmorProfile(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"bulwark-abc_1.2+3", "x"} {
		if _, err := AppArmorProfile(ok); err != nil {
			t.Errorf("AppArmorProfile(%q): %v", ok, err)
		}
	}
}
