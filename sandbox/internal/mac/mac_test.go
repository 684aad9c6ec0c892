package mac

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/selinux/go-selinux"

	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
)

// Enforcement tests run the label or profile switch in a re-executed copy of the test binary: it
// changes the calling thread for good.
const childEnv = "BULWARK_MAC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		kind, arg, _ := strings.Cut(mode, ":")
		var err error
		switch kind {
		case "apparmor":
			err = macexec.ApplyAppArmorExec(arg)
		case "selinux":
			err = macexec.ApplySELinuxExec(arg)
		}
		if err == nil {
			err = syscall.Exec("/bin/cat", []string{"cat", "/proc/self/attr/current"}, nil)
		}
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// runChild returns what the exec'd program printed.
func runChild(t *testing.T, mode string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", mode, err, out)
	}
	return string(out)
}

func TestDetect(t *testing.T) {
	l := Detect()
	t.Logf("MAC layers on this host: %v", l)
	if l.LandlockABI != landlock.ABI() {
		t.Errorf("LandlockABI %d, landlock.ABI() %d", l.LandlockABI, landlock.ABI())
	}
	if l.Landlock() != (l.LandlockABI >= landlock.MinABI) {
		t.Errorf("Landlock() = %v with ABI %d", l.Landlock(), l.LandlockABI)
	}
	if l.Any() != (l.SELinux || l.AppArmor || l.Landlock()) {
		t.Errorf("Any() = %v for %+v", l.Any(), l)
	}
	if l.AppArmor != macexec.AppArmorEnabled() {
		t.Errorf("AppArmor = %v", l.AppArmor)
	}
}

func TestLayersString(t *testing.T) {
	cases := map[Layers]string{
		{}:                              "none",
		{LandlockABI: 7}:                "landlock(abi 7)",
		{SELinux: true, LandlockABI: 3}: "selinux,landlock(abi 3)",
		{AppArmor: true}:                "apparmor",
		{SELinux: true, AppArmor: true}: "selinux,apparmor",
	}
	for l, want := range cases {
		if got := l.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", l, got, want)
		}
	}
	if (Layers{LandlockABI: landlock.MinABI - 1}).Any() {
		t.Error("a Landlock ABI below MinABI counts as a MAC layer")
	}
}

func TestApplyNotEnabled(t *testing.T) {
	// Applying a layer the host lacks must fail, never pretend.
	l := Detect()
	if !l.SELinux {
		if err := macexec.ApplySELinuxExec("system_u:system_r:container_t:s0:c1,c2"); !errors.Is(err, ErrNotEnabled) {
			t.Errorf("ApplySELinuxExec without SELinux = %v, want ErrNotEnabled", err)
		}
	}
	if !l.AppArmor {
		p, err := AppArmorProfile("bulwark-x")
		if err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"load":   LoadAppArmor(p),
			"unload": UnloadAppArmor("bulwark-x"),
			"apply":  macexec.ApplyAppArmorExec("bulwark-x"),
		} {
			if !errors.Is(err, ErrNotEnabled) {
				t.Errorf("%s without AppArmor = %v, want ErrNotEnabled", name, err)
			}
		}
	}
}

// selinuxEnabled answers as go-selinux does on this host, and leaves to it every host whose kernel
// knows selinuxfs.
func TestSELinuxEnabledIsGoSELinux(t *testing.T) {
	if got, want := selinuxEnabled(), selinux.GetEnabled(); got != want {
		t.Fatalf("selinuxEnabled() = %v, go-selinux says %v", got, want)
	}
	if noSELinuxfs() && selinux.GetEnabled() {
		t.Fatal("noSELinuxfs on a host where go-selinux finds SELinux enabled")
	}
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	if noSELinuxfs() == listsSELinuxfs(data) {
		t.Errorf("noSELinuxfs() = %v, /proc/filesystems lists selinuxfs: %v", noSELinuxfs(), listsSELinuxfs(data))
	}
	// The answer from sysfs alone (no /sys/fs/selinux in a sysfs) is /proc/filesystems'.
	if _, err := os.Stat("/sys/fs/selinux"); errors.Is(err, os.ErrNotExist) && sysfsAt("/sys/fs") && listsSELinuxfs(data) {
		t.Error("/sys/fs is sysfs without a selinux directory, yet /proc/filesystems lists selinuxfs")
	}
	if sysfsAt("/proc") || sysfsAt("/nonexistent") {
		t.Error("sysfsAt takes /proc or a missing directory for sysfs")
	}
	for in, want := range map[string]bool{
		"nodev\tsysfs\nnodev\tselinuxfs\n": true, "nodev\tselinuxfs\nnodev\tproc\n": true,
		"nodev\tsysfs\nnodev\tproc\n": false, "nodev\tselinuxfsx\n": false, "": false,
	} {
		if listsSELinuxfs([]byte(in)) != want {
			t.Errorf("listsSELinuxfs(%q) = %v", in, !want)
		}
	}
}
