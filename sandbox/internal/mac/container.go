package mac

import (
	"errors"
	"fmt"
)

// Prepare runs the parent-side steps for a container on the given layers: reserve unique SELinux
// labels (want carries the spec's labels, if any) and generate and load its AppArmor profile. id
// is the container's key in this host-wide state, unique on the host (the runtime adds its root
// to the container's id). On error, whatever it did is undone.
func Prepare(layers Layers, store *LabelStore, id string, want SELinuxLabels) (c Container, err error) {
	c.Layers = layers
	if layers.SELinux {
		if store == nil {
			return Container{}, errors.New("selinux labels: no label store")
		}
		if c.SELinux, err = store.Reserve(id, want); err != nil {
			return Container{}, fmt.Errorf("selinux labels: %w", err)
		}
		defer func() {
			if err != nil {
				err = errors.Join(err, store.Release(id))
			}
		}()
	}
	if layers.AppArmor {
		name := AppArmorProfileName(id)
		var profile []byte
		if profile, err = AppArmorProfile(name); err != nil {
			return Container{}, err
		}
		if err = LoadAppArmor(profile); err != nil {
			return Container{}, err
		}
		c.AppArmor = name
	}
	return c, nil
}

// Cleanup releases what Prepare took for the container keyed id. It is idempotent and works from
// the key alone (after a crash the state may be gone): it releases the SELinux reservation
// if the store has one and unloads the profile if the kernel has it.
func Cleanup(layers Layers, store *LabelStore, id string) error {
	var errs []error
	if store != nil {
		errs = append(errs, store.Release(id))
	}
	if layers.AppArmor {
		errs = append(errs, UnloadAppArmor(AppArmorProfileName(id)))
	}
	return errors.Join(errs...)
}
