package runccli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/engine/runcgate"
	"bulwark.dev/bulwark/sandbox"
)

// A container's hooks are decided at create (runcgate.Decide) and recorded under --root for its
// start (poststart) and delete (poststop), which are other bulwark-runc processes.

// hookRecord is where container id's decided hooks are kept between create and delete.
func (c *cliContext) hookRecord(id string) string {
	return filepath.Join(c.g.root, "hooks", id+".json")
}

// createHooks runs ct's prestart and createRuntime hooks (the container's namespaces exist, its
// process waits for start). An error means the container must not go on.
func (c *cliContext) createHooks(ct *sandbox.Container, hs runcgate.Hooks) error {
	if len(hs) == 0 {
		return nil
	}
	st, err := ct.State()
	if err != nil {
		return fmt.Errorf("create %s: state for hooks: %w", ct.ID(), err)
	}
	state := st.State
	state.Status = specs.StateCreating // as runc: create has not returned yet
	for _, phase := range []string{runcgate.PhasePrestart, runcgate.PhaseCreateRuntime} {
		if err := runcgate.RunHooks(context.Background(), c.gateConfig(), c.g.tenant, phase, hs, state); err != nil {
			return fmt.Errorf("create %s: %w", ct.ID(), err)
		}
	}
	return nil
}

// start starts ct and runs its poststart hooks; a failed hook is logged (the runtime spec: the
// container keeps running).
func (c *cliContext) start(ct *sandbox.Container) error {
	if err := ct.Start(); err != nil {
		return fmt.Errorf("start container %s: %w", ct.ID(), err)
	}
	hs, err := runcgate.LoadHooks(c.hookRecord(ct.ID()))
	if err == nil && len(hs) > 0 {
		var st sandbox.State
		if st, err = ct.State(); err == nil {
			err = runcgate.RunHooks(context.Background(), c.gateConfig(), c.g.tenant, runcgate.PhasePoststart, hs, st.State)
		}
	}
	if err != nil {
		c.log().Warn(fmt.Sprintf("container %s: poststart hooks: %v", ct.ID(), err))
	}
	return nil
}

// deleteContainer deletes ct, then runs its poststop hooks and removes its hook record; a failed
// hook is logged (the runtime spec: the lifecycle goes on).
func (c *cliContext) deleteContainer(ct *sandbox.Container, force bool) error {
	hs, herr := runcgate.LoadHooks(c.hookRecord(ct.ID()))
	var st sandbox.State
	if herr == nil && len(hs) > 0 {
		st, herr = ct.State() // the poststop hooks get the state from before the delete
	}
	c.log().lap("cli:predelete")
	if err := ct.Delete(force); err != nil {
		return err
	}
	if herr == nil && len(hs) > 0 {
		state := st.State
		state.Status = specs.StateStopped
		herr = runcgate.RunHooks(context.Background(), c.gateConfig(), c.g.tenant, runcgate.PhasePoststop, hs, state)
	}
	herr = errors.Join(herr, runcgate.SaveHooks(c.hookRecord(ct.ID()), nil))
	if herr != nil {
		c.log().Warn(fmt.Sprintf("container %s: poststop hooks: %v", ct.ID(), herr))
	}
	c.log().lap("cli:poststop")
	return nil
}
