package runccli

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"

	"bulwark.dev/bulwark/engine/runcgate"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// stateRootEnv overrides the default persistent state root (tests, or a host whose Bulwark state
// lives elsewhere); --state-root overrides both.
const stateRootEnv = "BULWARK_STATE_ROOT"

// gcMemoryLimit is when the garbage collector runs once the policy has been loaded (see decide).
const gcMemoryLimit = 128 << 20

// policyOpts are Bulwark's policy flags. There is deliberately no flag that skips the decision.
type policyOpts struct {
	dir        string
	bundle     string
	key        string
	stateRoot  string
	dockerRoot string
}

func (o *policyOpts) register(pf *pflag.FlagSet) {
	def := os.Getenv(stateRootEnv)
	if def == "" {
		def = "/var/lib/bulwark"
	}
	pf.StringVar(&o.dir, "policy", "", "policy directory (.rego modules and/or data.json); default: the embedded policy")
	pf.StringVar(&o.bundle, "policy-bundle", "", "signed OPA policy bundle (needs --policy-key)")
	pf.StringVar(&o.key, "policy-key", "", "PEM public key that verifies --policy-bundle")
	pf.StringVar(&o.stateRoot, "state-root", def, "persistent state root (the accepted policy bundle revision, "+
		"the audit log, the host's one id-range allocator and SELinux label store); unlike --root it must survive a reboot (env "+stateRootEnv+")")
	pf.StringVar(&o.dockerRoot, "docker-root", "", "dockerd's data root when dockerd runs this runtime (e.g. /var/lib/docker): "+
		"its named volumes (<root>/volumes/NAME/_data) are decided on as Docker volumes and, writable, adopted into the storage range")
}

// beginPolicy starts what the policy step needs before it sees the request (runcgate.Begin), in
// the background, or returns the session startPolicy started: call it before reading the bundle,
// and pass it to decide.
func (c *cliContext) beginPolicy() *runcgate.Session {
	if pol := c.pol; pol != nil {
		c.pol = nil
		return pol
	}
	return runcgate.Begin(c.gateConfig())
}

// startPolicy starts the policy session of a command that decides (create, run, exec) as soon as
// its flags are parsed, before its logger is opened: the session's goroutine waits for a core (on
// a small VM the other vCPU's wake-up took 75-250 us) and the decision's path does what it has not
// done by then, so the earlier it starts the more of it leaves the path.
func (c *cliContext) startPolicy(command string) {
	switch command {
	case "create", "run", "exec":
		c.pol = runcgate.Begin(c.gateConfig())
	}
}

// decide asks the policy engine, through pol (beginPolicy), about a create (p nil) or an exec of p, on the effective spec rt's
// floor makes of spec. It returns the decision (for a create: the spec to create, bind sources
// resolved and constraints applied, and the hooks policy allowed) and durable, which waits until the decision's audit record is durable: call it after Create and
// before anything runs. A denial is an error listing every reason (code, message, path), which
// finish prints on stderr and in the --log log.
func (c *cliContext) decide(pol *runcgate.Session, rt *sandbox.Runtime, tenant, id, bundle string, spec *specs.Spec, p *specs.Process, pod string) (*runcgate.Decision, func() error, error) {
	// The policy's cold path (parse, compile, prepare: ≈ 30 MB that are garbage once it has
	// decided) spends about a third of its time collecting when the GC runs, and a collection
	// right after it delays the container's start (measured: run of /bin/true ≈ 4 ms slower at
	// p50). bulwark-runc is short-lived or, for a foreground run, idle: it collects only when its
	// memory reaches the limit.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcMemoryLimit)
	op := document.OpCreate
	if p != nil {
		op = document.OpExec
	}
	begun := time.Now()
	d, err := pol.Decide(context.Background(), rt, runcgate.Request{Operation: op, Tenant: tenant, ContainerID: id, Bundle: bundle, Spec: spec, Process: p, Pod: pod})
	c.log().Step(id, "policy", time.Since(begun))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	logged := false
	durable := func() error { // safe to call again: d.Durable waits once
		if err := d.Durable(); err != nil {
			return fmt.Errorf("%s %s: %w", op, id, err)
		}
		if !logged {
			logged = true
			c.log().Debugf("%s %s: %s", op, id, d.Summary())
			for step, took := range map[string]time.Duration{"policy:load": d.Load, "policy:prepare": d.Prepare, "policy:decide": d.Decision.Duration, "policy:session-wait": d.SessionWait, "audit-wait": d.Audit} {
				c.log().Step(id, step, took)
			}
		}
		return nil
	}
	return d, durable, nil
}

// gateConfig is where the policy comes from and where decisions and refusals are audited.
func (c *cliContext) gateConfig() runcgate.Config {
	o := c.g.policy
	return runcgate.Config{
		StateRoot: o.stateRoot, DockerRoot: o.dockerRoot, PolicyDir: o.dir, PolicyBundle: o.bundle, PolicyKeyFile: o.key,
		UID: os.Getuid(), GID: os.Getgid(),
	}
}

// decideExec asks policy about exec'ing p in the container whose state is st, for the caller's
// tenant (which owns it: Load finds no other tenant's container), on the container's bundle spec
// with p as its process.
func (c *cliContext) decideExec(id string, st sandbox.State, p *specs.Process) error {
	pol := c.beginPolicy()
	bundle, spec, err := loadBundle(st.Bundle)
	if err != nil {
		return fmt.Errorf("exec %s: container bundle: %w", id, err)
	}
	rt, err := c.runtime()
	if err != nil {
		return err
	}
	_, durable, err := c.decide(pol, rt, c.g.tenant, id, bundle, spec, p, st.Pod)
	if err != nil {
		return err
	}
	return durable()
}
