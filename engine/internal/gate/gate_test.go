package gate

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/policy"
)

func TestApplyConstraints(t *testing.T) {
	mem, swap, pids := int64(1<<30), int64(1<<30), int64(4096)
	eff := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem, Swap: &swap}, Pids: &specs.LinuxPids{Limit: &pids}}}}
	maxMem, maxPids := int64(256<<20), int64(8192)
	changes := ApplyConstraints(eff, policy.Constraints{MaxMemory: &maxMem, MaxPids: &maxPids})
	r := eff.Linux.Resources
	if *r.Memory.Limit != 256<<20 || *r.Memory.Swap != 256<<20 || *r.Pids.Limit != 4096 {
		t.Errorf("limits: memory %d swap %d pids %d", *r.Memory.Limit, *r.Memory.Swap, *r.Pids.Limit)
	}
	if len(changes) != 1 || changes[0].Field != "linux.resources.memory.limit" {
		t.Errorf("changes %+v", changes)
	}
}
