// Package mac detects and drives the host's mandatory access control layers for a container:
// SELinux (unique MCS labels), AppArmor (a per-container profile) and the Landlock ABI; the
// Landlock ruleset itself lives in sandbox/internal/landlock.
package mac

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"github.com/opencontainers/selinux/go-selinux"
)

// Layers says which MAC layers the host can enforce.
type Layers struct {
	SELinux  bool `json:"selinux"`
	AppArmor bool `json:"apparmor"`
	// LandlockABI is the kernel's Landlock ABI version, 0 without Landlock.
	LandlockABI int `json:"landlockABI"`
}

// Landlock reports whether the kernel's Landlock can enforce the sandbox rules.
func (l Layers) Landlock() bool { return l.LandlockABI >= landlock.MinABI }

// Any reports whether at least one layer can confine a container. Without any, the runtime refuses
// to start containers unless the operator configured an explicit, audited exception.
func (l Layers) Any() bool { return l.SELinux || l.AppArmor || l.Landlock() }

// String names the usable layers, e.g. "landlock(abi 7)" or "none".
func (l Layers) String() string {
	var s []string
	if l.SELinux {
		s = append(s, "selinux")
	}
	if l.AppArmor {
		s = append(s, "apparmor")
	}
	if l.LandlockABI > 0 {
		s = append(s, fmt.Sprintf("landlock(abi %d)", l.LandlockABI))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// ErrNotEnabled is returned when asked to apply a layer the host does not enable. Callers decide
// from Detect which layers to use; applying one that is off must never look like success.
var ErrNotEnabled = errors.New("MAC layer not enabled on this host")

// Detect probes the host.
func Detect() Layers {
	return Layers{
		SELinux:     selinux.GetEnabled(),
		AppArmor:    appArmorEnabled(),
		LandlockABI: landlock.ABI(),
	}
}

// appArmorEnabled follows the kernel's own switches: the module parameter says AppArmor is on,
// and securityfs exposes its interface (needed to load profiles).
func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if err != nil || !strings.HasPrefix(string(b), "Y") {
		return false
	}
	_, err = os.Stat("/sys/kernel/security/apparmor")
	return err == nil
}
