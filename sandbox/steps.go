package sandbox

import (
	"time"

	"bulwark.dev/bulwark/sandbox/setup"
)

// Step timing: where a container's start goes, for benchmarks and an operator's --debug log.
// Create times its own steps in order (they add up to its wall time) and the setup child times
// its confinement steps the same way, sending them with "ready"; Start, Wait and Delete each time
// themselves. Steps are reported through Options.Steps; the clocks cost nanoseconds and never
// change what is done.
//
// Create's steps (the runtime, in order):
//
//	floor            the floor applied to the spec, the rootfs opened
//	state            the container directory, its lock, the first state write
//	cgroups+idrange  the id range allocated and the cgroup made (its directories, ready to join;
//	                 begun with state)
//	spawn            the user namespace mapped (it and the network, ipc and uts namespaces are made
//	                 in one clone begun after floor, beside state and cgroups+idrange), the setup
//	                 binary executed (it joins them, creates the others and forks init)
//	seccomp          the seccomp programs compiled (or taken from the cache)
//	plan             the process plan, MAC labels, generated files
//	idmap+binds      the idmapped rootfs mount and the detached bind mounts (donated descriptors)
//	memfd            the child's vm.memfd_noexec raised (begun at spawn)
//	limits           the cgroup's limits written (begun once its directories were made)
//	config           the plan sent
//	await-ready      until the child reports ready: its own steps below
//	created          the "created" state persisted
//
// The setup child's steps (inside await-ready, except exec, which overlaps the runtime's steps from
// seccomp to config):
//
//	child:exec        from spawn until the child runs its setup (the runtime's start-up, Go's and
//	                  every package's initialisation)
//	child:config      waiting for the plan
//	child:mounts      cgroup namespace, rootfs, mounts, masked paths, pivot_root
//	child:uts+net     hostname, loopback
//	child:user+caps   rlimits, user, groups, capabilities, cwd, the executable found
//	child:nnp+mac     no_new_privs, SELinux/AppArmor
//	child:landlock    the Landlock domain
//	child:fds         descriptor hygiene
//	child:seccomp     the filters loaded
//
// Then: start (the exec fifo written), workload (from start until init is reaped: the setup
// child woken on the fifo, its execve of the workload — which first ends the child's other
// threads and drops its address space —, the workload's run and exit, and the kernel's teardown
// of the container's namespaces and mounts before the exit is seen; the runtime only waits) and
// teardown (Delete). Exec times floor, seccomp, plan, spawn (nsenter joining the namespaces
// included), config and await-ready, and the child's steps as above.
//
// A caller times its own work between these steps so that together they cover its wall time;
// bulwark-runc's (runccli) are named cli:*: for a run, cli:flags (from main until the
// command line is parsed), cli:log (privilege check, log opened), cli:bundle (config.json read and
// parsed), cli:runtime (the Runtime opened), policy, cli:signal (waiting until every signal is
// caught, which began beside cli:bundle), Create's steps, cli:hook-record, audit-wait,
// cli:hooks+pid, start, workload, cli:predelete (the hook record and state read for poststop),
// teardown and cli:poststop.

// StepSink receives how long each timed step of a container's life took.
type StepSink interface {
	Step(containerID, step string, d time.Duration)
}

// steps reports every recorded step of container id, in order, when the Runtime has a sink.
func (r *Runtime) steps(id string, steps ...[]setup.StepTime) {
	if r.opts.Steps == nil {
		return
	}
	for _, list := range steps {
		for _, s := range list {
			r.opts.Steps.Step(id, s.Step, time.Duration(s.NS))
		}
	}
}

// step reports one step of container id, when the Runtime has a sink.
func (r *Runtime) step(id, step string, d time.Duration) {
	if r.opts.Steps != nil {
		r.opts.Steps.Step(id, step, d)
	}
}

// childSteps are the setup child's steps from its ready message, led by child:exec, the time from
// spawned (when the runtime began to start it) until the child began its setup.
func childSteps(ready *setup.Message, spawned time.Time) []setup.StepTime {
	exec := time.Unix(0, ready.Started).Sub(spawned)
	return append([]setup.StepTime{{Step: "child:exec", NS: exec.Nanoseconds()}}, ready.Steps...)
}
