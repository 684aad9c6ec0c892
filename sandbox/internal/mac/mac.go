// Package mac detects and drives the host's mandatory access control layers for a container:
// SELinux (unique MCS labels), AppArmor (a per-container profile) and the Landlock ABI; the
// Landlock ruleset itself lives in sandbox/internal/landlock.
package mac

import (
	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
	"github.com/opencontainers/selinux/go-selinux"
)

// The state the MAC layers keep for one container, and its application in the setup child, live
// in macexec: the setup child links that package without this one.
type (
	Layers        = macexec.Layers
	Container     = macexec.Container
	SELinuxLabels = macexec.SELinuxLabels
)

// ErrNotEnabled is returned when asked to apply a layer the host does not enable.
var ErrNotEnabled = macexec.ErrNotEnabled

// Detect probes the host.
func Detect() Layers {
	return Layers{
		SELinux:     selinux.GetEnabled(),
		AppArmor:    macexec.AppArmorEnabled(),
		LandlockABI: landlock.ABI(),
	}
}
