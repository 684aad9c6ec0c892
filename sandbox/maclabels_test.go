package sandbox

import (
	"testing"

	"bulwark.dev/bulwark/sandbox/internal/mac"
)

func labelledSpec() *floor {
	s := floorSpec()
	s.Process.ApparmorProfile = "docker-default"
	s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
	s.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
	return &floor{spec: s}
}

// TestFloorRaisesUnappliedMACLabels: labels for a layer the host lacks are recorded as not
// applied (naming what confines the container instead) and dropped from the effective spec;
// labels for a layer the host has are kept.
func TestFloorRaisesUnappliedMACLabels(t *testing.T) {
	f := labelledSpec()
	f.layers = mac.Layers{LandlockABI: 7}
	if err := f.macLabels(); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"process.apparmorProfile", "process.selinuxLabel", "linux.mountLabel"} {
		if !hasRaise(f.raises, field, "not applied: host has no ") || !hasRaise(f.raises, field, "; Landlock enforced") {
			t.Errorf("%s: no raise in %+v", field, f.raises)
		}
	}
	if len(f.raises) != 3 || f.raises[0].From != "docker-default" {
		t.Errorf("raises %+v", f.raises)
	}
	if p := f.spec.Process; p.ApparmorProfile != "" || p.SelinuxLabel != "" || f.spec.Linux.MountLabel != "" {
		t.Errorf("effective spec keeps labels it does not apply: %+v", p)
	}

	f = labelledSpec()
	f.layers = mac.Layers{SELinux: true, LandlockABI: 7}
	if err := f.macLabels(); err != nil {
		t.Fatal(err)
	}
	if len(f.raises) != 1 || f.raises[0].Field != "process.apparmorProfile" ||
		f.raises[0].To != "not applied: host has no AppArmor; SELinux, Landlock enforced" {
		t.Errorf("SELinux host: raises %+v", f.raises)
	}
	if f.spec.Process.SelinuxLabel == "" || f.spec.Linux.MountLabel == "" {
		t.Error("SELinux host: labels dropped")
	}

	f = labelledSpec()
	f.layers = mac.Layers{AppArmor: true}
	if err := f.macLabels(); err != nil {
		t.Fatal(err)
	}
	if len(f.raises) != 2 || f.spec.Process.ApparmorProfile != "docker-default" {
		t.Errorf("AppArmor host: raises %+v, profile %q", f.raises, f.spec.Process.ApparmorProfile)
	}
}

// TestFloorMACLabelsOnThisHost: through Floor, on the real host (Landlock only, here).
func TestFloorMACLabelsOnThisHost(t *testing.T) {
	l := hostLayers()
	if l.AppArmor || l.SELinux {
		t.Skip("host has AppArmor or SELinux: the labels are applied, not raised")
	}
	in := labelledSpec().spec
	eff, raises, err := floored(floorRuntime(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if !hasRaise(raises, "process.apparmorProfile", "not applied: host has no AppArmor") ||
		!hasRaise(raises, "linux.mountLabel", "not applied: host has no SELinux") {
		t.Fatalf("raises %+v", raises)
	}
	if eff.Process.ApparmorProfile != "" || in.Process.ApparmorProfile == "" {
		t.Fatal("effective spec keeps the profile, or Floor modified its input")
	}
}
