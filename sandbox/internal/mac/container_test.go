package mac

import (
	"errors"
	"strings"
	"testing"
)

func TestContainerLandlockOnly(t *testing.T) {
	c, err := Prepare(Layers{LandlockABI: 7}, nil, "a", SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	if c.SELinux != (SELinuxLabels{}) || c.AppArmor != "" {
		t.Fatalf("Landlock-only container got %+v", c)
	}
	if got := c.MountOptions("size=64m"); got != "size=64m" {
		t.Errorf("MountOptions = %q", got)
	}
	if err := c.ApplyExec(); err != nil {
		t.Errorf("ApplyExec with no label layer: %v", err)
	}
	if err := Cleanup(c.Layers, nil, "a"); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
}

// TestContainerSELinuxBookkeeping drives the SELinux path as if the host enabled it: everything up
// to the kernel boundary happens; applying must then fail on this host, not pretend.
func TestContainerSELinuxBookkeeping(t *testing.T) {
	store, err := OpenLabelStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layers := Layers{SELinux: true, LandlockABI: 7}
	c1, err := Prepare(layers, store, "one", SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Prepare(layers, store, "two", SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	if c1.SELinux.Level() == c2.SELinux.Level() {
		t.Fatalf("two containers share level %s", c1.SELinux.Level())
	}
	if got, want := c1.MountOptions("mode=1777"), `mode=1777,context="`+c1.SELinux.Mount+`"`; got != want {
		t.Errorf("MountOptions = %s, want %s", got, want)
	}
	if !Detect().SELinux {
		if err := c1.ApplyExec(); !errors.Is(err, ErrNotEnabled) {
			t.Errorf("ApplyExec on a host without SELinux = %v, want ErrNotEnabled", err)
		}
	}
	for _, id := range []string{"one", "one", "two"} { // twice: idempotent
		if err := Cleanup(Layers{SELinux: true}, store, id); err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := store.List(); len(m) != 0 {
		t.Fatalf("reservations left after cleanup: %v", m)
	}
	if _, err := Prepare(layers, nil, "x", SELinuxLabels{}); err == nil {
		t.Error("Prepare without a label store succeeded")
	}
}

func TestContainerPrepareRollsBack(t *testing.T) {
	if Detect().AppArmor {
		t.Skip("the rollback is provoked by AppArmor failing to load, which it does not here")
	}
	store, _ := OpenLabelStore(t.TempDir())
	_, err := Prepare(Layers{SELinux: true, AppArmor: true}, store, "c", SELinuxLabels{})
	if !errors.Is(err, ErrNotEnabled) || !strings.Contains(err.Error(), "apparmor") {
		t.Fatalf("Prepare = %v, want the AppArmor load failure", err)
	}
	if m, _ := store.List(); len(m) != 0 {
		t.Fatalf("failed Prepare left reservations: %v", m)
	}
}
