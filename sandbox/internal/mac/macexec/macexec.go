// Package macexec holds what the MAC layers keep for one container (the host's layers, its
// SELinux labels, its AppArmor profile's name) and applies it in the setup child, at the
// workload's execve. The runtime's side (detection, label reservation, profile generation and
// loading) is package mac, which aliases these types; the setup child links only this package.
package macexec

import (
	"errors"
	"fmt"
	"strings"

	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"
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

// Container is what the MAC layers hold for one container: the host's layers when it was
// prepared, its SELinux labels (when SELinux is on) and its AppArmor profile (when AppArmor is on).
// The runtime persists it in the container's state; Landlock is applied separately.
type Container struct {
	Layers   Layers        `json:"layers"`
	SELinux  SELinuxLabels `json:"selinux,omitempty"`
	AppArmor string        `json:"apparmor,omitempty"`
}

// MountOptions adds the container's mount label to the data of a mount the runtime creates
// (tmpfs, devpts, mqueue); unchanged without SELinux.
func (c Container) MountOptions(data string) string {
	if !c.Layers.SELinux {
		return data
	}
	return SELinuxMountOptions(data, c.SELinux.Mount)
}

// ApplyExec runs the child-side steps, just before execve and before Landlock (which forbids the
// /proc writes): the next execve of the calling thread enters the SELinux label and the AppArmor
// profile. A layer that was prepared but cannot be applied is an error.
func (c Container) ApplyExec() error {
	if c.Layers.SELinux {
		if err := ApplySELinuxExec(c.SELinux.Process); err != nil {
			return err
		}
	}
	if c.Layers.AppArmor {
		if err := ApplyAppArmorExec(c.AppArmor); err != nil {
			return err
		}
	}
	return nil
}

// SELinuxLabels are one container's SELinux labels: Process for its processes (written to
// /proc/thread-self/attr/exec before execve), Mount for its mounts (the context= option).
// Both carry the container's MCS level "s0:cA,cB", unique among live containers, so that two
// containers running the same type still cannot touch each other's processes or files.
type SELinuxLabels struct {
	Process string `json:"process"`
	Mount   string `json:"mount"`
}

// Level returns the MCS level shared by the labels ("s0:c12,c345").
func (l SELinuxLabels) Level() string {
	c, err := selinux.NewContext(l.Process)
	if err != nil {
		return ""
	}
	return c["level"]
}

// SELinuxMountOptions appends the context= option carrying mountLabel to the mount data opts
// (e.g. "size=64m" -> `size=64m,context="system_u:object_r:container_file_t:s0:c1,c2"`): every
// file on the mount then has the container's label, whatever the image says.
func SELinuxMountOptions(opts, mountLabel string) string {
	return label.FormatMountLabel(opts, mountLabel)
}
