package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/openat2"
	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/sandbox/internal/cgroups"
	"bulwark.dev/bulwark/sandbox/internal/idmap"
	"bulwark.dev/bulwark/sandbox/internal/mac"
	"bulwark.dev/bulwark/sandbox/setup"
)

// Create sets up a container: namespaces, cgroup, idmapped rootfs, mounts and every confinement
// layer, ending with an init process that waits for Start to execute the workload. Any failure
// undoes everything done so far and returns the layer, step and errno that failed.
//
// Bind sources are resolved here, once (see ResolveBinds); a caller that decides on the spec first
// resolves them itself and calls CreateResolved.
func (r *Runtime) Create(id, bundle string, spec *specs.Spec, stdio IO) (*Container, error) {
	return r.CreateResolved(id, bundle, spec, nil, stdio)
}

// CreateResolved is Create with the bind sources already resolved (ResolveBinds): every bind is
// mounted from binds' descriptors, so what was decided on is what is mounted; a bind binds does
// not hold is refused. binds stays the caller's to close; nil resolves them here.
func (r *Runtime) CreateResolved(id, bundle string, spec *specs.Spec, binds *BindSources, stdio IO) (*Container, error) {
	return r.CreateContext(context.Background(), id, bundle, spec, binds, stdio)
}

// CreateContext is CreateResolved (binds may be nil) that gives up when ctx is done: the setup
// child is killed, everything made so far undone, and the error wraps ctx's.
func (r *Runtime) CreateContext(ctx context.Context, id, bundle string, spec *specs.Spec, binds *BindSources, stdio IO) (*Container, error) {
	return r.create(ctx, id, bundle, spec, nil, -1, binds, nil, stdio)
}

// CreateFloored is CreateContext for a spec r's FloorResolved already floored over resolved bind
// sources, as decided on (the policy gate's result, its constraints applied to res.Spec): the
// container gets exactly res — the spec is not floored a second time. res's bind sources stay
// the caller's to close.
func (r *Runtime) CreateFloored(ctx context.Context, id, bundle string, res *FloorResult, stdio IO) (*Container, error) {
	if err := r.checkFloored(id, res); err != nil {
		return nil, err
	}
	return r.create(ctx, id, bundle, nil, nil, -1, res.binds, res, stdio)
}

// checkFloored refuses a floor result CreateFloored must not create: one that r's floor did not
// make (or a runtime's that floors exactly as r does: the same options but where events and
// steps go), over resolved bind sources whose join decision no later floor has replaced.
func (r *Runtime) checkFloored(id string, res *FloorResult) error {
	if res == nil || res.rt == nil || !res.rt.floorsAs(r) || res.binds == nil || res.binds.joined != res.joined {
		return floorErr("create %s: not the last floor result of this runtime over resolved bind sources", id)
	}
	return nil
}

// floorsAs reports whether r and o floor every spec alike: their options are the same but for
// where events and steps go.
func (r *Runtime) floorsAs(o *Runtime) bool {
	a, b := r.opts, o.opts
	a.Events, a.Steps, b.Events, b.Steps = nil, nil, nil, nil
	return a == b
}

// create is CreateContext with the root made of layers (topmost first) when they are given, over
// the caller's writable upper filesystem when upper >= 0; floored, when not nil, is the floor's
// result to create (CreateFloored), and spec is then unused.
func (r *Runtime) create(ctx context.Context, id, bundle string, spec *specs.Spec, rootLayers []string, upper int, binds *BindSources, floored *FloorResult, stdio IO) (c *Container, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	defer func() {
		// Whatever step noticed first that the child was killed, the cause is the context.
		if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("create %s: %w (%v)", id, cerr, err)
		}
	}()
	if bundle, err = filepath.Abs(bundle); err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
	}
	clk := setup.NewStepClock()
	if binds == nil {
		if spec, binds, err = ResolveBinds(spec, bundle); err != nil {
			return nil, err
		}
		defer binds.Close()
	}
	res := floored
	if res == nil {
		res, err = r.FloorResolved(spec, binds)
	}
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return nil, err
	}
	eff, raises := res.Spec, res.Raises
	// Raises the caller already recorded with its decision are counted, not recorded again.
	recorded := 0
	if res.raisesRecorded {
		recorded = len(raises)
	}
	join := binds.joined
	if eff.Hostname == "" && !join.has(specs.UTSNamespace) {
		// A fresh UTS namespace starts as a copy of the host's names: do not leak the hostname.
		// (An id may be longer than the 64 bytes a hostname can hold.) The caller's result is
		// left as it was: the engine encodes the same spec into its plan meanwhile.
		named := *eff
		named.Hostname = id[:min(len(id), 63)]
		eff = &named
		raises = append(slices.Clip(raises), Raise{Field: "hostname", From: "host's", To: eff.Hostname})
	}
	// Resolved once, like the bind sources: the directory checked is the directory mounted.
	root, err := openRoot(eff, bundle, rootLayers, upper)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// The container's own namespaces wait on the kernel (a network namespace's set-up): they are
	// made beside the state, the cgroup and the id range (see ownNS). What else depends on the
	// spec alone is read meanwhile too: the host's cgroup hierarchies (mountinfo), and the
	// seccomp programs (the cache), needed once the child is started.
	own := makeOwnNS(join)
	cgName := cgroupName(id, eff)
	cgroupOf := async(func() (cgroups.Manager, error) { return cgroups.New(cgName) })
	seccompOf := async(func() ([]setup.SeccompBlob, error) { return r.compileSeccomp(eff.Linux.Seccomp) })
	// Create returns only once that read is done, on every path: it may write the cache, which
	// must not change the state root after a refused create has returned.
	defer seccompOf()
	clk.Lap("floor")

	var undo cleanup
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	undo.add(own.release)
	if eff.Process.Terminal && stdio.ConsoleSocket == "" {
		return nil, errors.New("process.terminal is set but no console socket was given")
	}
	dir := r.containerDir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExist, id)
		}
		return nil, fmt.Errorf("create container dir: %w", err)
	}
	undo.add(func() { r.removeState(dir) })
	// Held until Create returns: a concurrent Delete waits for the outcome instead of racing it.
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// The id is ours: the cgroup is made (its directories; the limits follow, see
	// cgroups.Manager.Create) while the state is written and the id range taken, each waiting on
	// the kernel (cgroupfs, the state's and the allocator's files).
	cgMade := async(func() (madeCgroup, error) { return makeCgroup(cgroupOf, cgName, eff) })
	undo.add(func() {
		// A failed make leaves nothing; a made cgroup goes once its limits are written.
		if m, err := cgMade(); err == nil {
			m.limits()
			m.cg.Destroy()
		}
	})
	st := newStateFile(id, bundle, r.opts.Tenant, eff)
	st.Raises = raises
	st.Pod = res.Pod(id)
	st.Created = time.Now().UTC()
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	clk.Lap("state")

	alloc, err := idmap.Open(r.opts.IDMapDir)
	var rng idmap.Range
	holder := r.rangeHolder(id)
	if err == nil {
		rng, err = alloc.Acquire(r.opts.Tenant, holder)
	}
	mc, cerr := cgMade()
	if cerr != nil {
		if err == nil {
			alloc.Release(r.opts.Tenant, holder)
		}
		return nil, cerr
	}
	cg, limits := mc.cg, mc.limits
	if err != nil {
		return nil, fmt.Errorf("acquire id range: %w", err)
	}
	undo.add(func() { alloc.Release(r.opts.Tenant, holder) })
	st.UIDBase, st.GIDBase, st.Size = rng.UIDBase, rng.GIDBase, rng.Size
	if p := join.podOf(); p != nil && (p.UIDBase != rng.UIDBase || p.GIDBase != rng.GIDBase || p.Size != rng.Size) {
		return nil, floorErr("pod sandbox %s maps another id range than tenant %s's", p.ID, r.opts.Tenant)
	}
	if err := checkUser(eff.Process, rng.Size); err != nil {
		return nil, err
	}

	fifo := filepath.Join(dir, execFifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	clk.Lap("cgroups+idrange")
	spawned := clk.Last

	usernsFD, made, err := own.namespaces(join, rng)
	if err != nil {
		return nil, err
	}
	defer closeNS(made)
	// The rootfs is owned by host ids; an idmapped mount through the container's user namespace
	// shifts it into the container's range without chowning the image (and without the child
	// needing to reach the host path). Made while the child starts.
	owner := [2]uint32{st.UIDBase, st.GIDBase}
	rootfsOf := async(func() (int, error) { return rootfsMount(root, usernsFD, owner) })
	donated := false
	defer func() {
		if rfd, err := rootfsOf(); err == nil && !donated {
			unix.Close(rfd)
		}
	}()
	ch, init, sysfs, err := r.startInit(stdio, eff.Process.Terminal, cg, join, made)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	defer setup.CloseAll([]int{sysfs})
	undo.add(init.kill)
	pid := init.pid
	// A cancelled create kills the child: the wait for its answer below ends at once.
	stopCancel := context.AfterFunc(ctx, func() { unix.Kill(pid, unix.SIGKILL) })
	defer stopCancel()
	// Before the container runs anything of its own (it waits for the config below).
	memfdErr := make(chan error, 1)
	go func() { memfdErr <- raiseMemfdNoexec(pid) }()
	clk.Lap("spawn")

	// While the child boots: the rest of the plan.
	sc, err := seccompOf()
	if err != nil {
		return nil, err
	}
	clk.Lap("seccomp")
	proc, err := processPlanFor(eff.Process, eff.Mounts, sc, !eff.Root.Readonly)
	if err != nil {
		return nil, err
	}
	// SELinux labels and the AppArmor profile, where the host has them (Landlock is in proc).
	layers := hostLayers()
	store, err := r.labelStore(layers)
	if err != nil {
		return nil, err
	}
	macC, err := mac.Prepare(layers, store, r.macKey(id), mac.SELinuxLabels{Process: eff.Process.SelinuxLabel, Mount: eff.Linux.MountLabel})
	if err != nil {
		return nil, fmt.Errorf("mac: %w", err)
	}
	undo.add(func() { mac.Cleanup(layers, store, r.macKey(id)) })
	proc.MAC = macC
	st.MAC = macC

	dns, err := nameservers(eff.Annotations)
	if err != nil {
		return nil, err
	}
	cfg := &setup.Config{
		ID: id, Hostname: eff.Hostname, Domainname: eff.Domainname,
		MaskedPaths: eff.Linux.MaskedPaths, ReadonlyPaths: eff.Linux.ReadonlyPaths,
		Sysctl: eff.Linux.Sysctl, Files: unbound(generatedFiles(eff.Hostname, dns), eff.Mounts), Process: proc,
		Cgroups: cgroupViews(cg), NetJoined: join.has(specs.NetworkNamespace), WritableRoot: !eff.Root.Readonly,
	}
	clk.Lap("plan")
	rfd, err := rootfsOf()
	if err != nil {
		return nil, err
	}
	held := holdRoot(rfd)
	undo.add(held.drop)
	donated = true
	fds, err := r.donate(cfg, rfd, owner, usernsFD, fifo, binds, eff.Mounts, macC, sysfs, dir)
	defer setup.CloseAll(fds)
	if err != nil {
		return nil, err
	}
	clk.Lap("idmap+binds")
	if err := <-memfdErr; err != nil {
		return nil, err
	}
	clk.Lap("memfd")
	// The child has run only the runtime's own code so far: the container's limits are in force
	// before it gets the plan.
	if err := limits(); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", st.Cgroup, err)
	}
	clk.Lap("limits")
	if err := setOOMScoreAdj(pid, &proc); err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	if err := ch.Send(&setup.Message{Kind: setup.KindConfig, Config: cfg, FDs: fds}); err != nil {
		return nil, err
	}
	clk.Lap("config")
	// Exec gives new processes exactly this confinement, so the effective spec is kept; it is
	// written while the child sets itself up.
	specErr := make(chan error, 1)
	go func() { specErr <- writeSpec(dir, eff) }()
	if b, err := st.appendJSON(nil); err == nil {
		go warmStateDecoder(b)
	}
	ready, err := awaitReady(ch, stdio.ConsoleSocket)
	if err != nil {
		<-specErr
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("create %s: %w", id, cerr)
		}
		return nil, err
	}
	if !stopCancel() {
		// Cancelled just as the child answered: it is being killed.
		return nil, fmt.Errorf("create %s: %w", id, ctx.Err())
	}
	if err := <-specErr; err != nil {
		return nil, err
	}
	clk.Lap("await-ready")

	st.Pid = pid
	st.InitStartTime = procstat.StartTime(pid)
	st.Status = specs.ContainerState(StatusCreated)
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	clk.Lap("created")
	undo.release()
	held.untilExit(pid)
	r.steps(id, clk.Steps, childSteps(ready, spawned))
	for _, rs := range raises[recorded:] {
		r.event(id, "raise", map[string]string{"field": rs.Field, "from": rs.From, "to": rs.To})
	}
	r.event(id, "create", map[string]string{"pid": strconv.Itoa(pid), "raises": strconv.Itoa(len(raises))})
	return &Container{rt: r, id: id, dir: dir, initPid: pid, initStart: st.InitStartTime, cg: cg, cgName: cgName}, nil
}

// labelStore opens the SELinux label reservations, only on hosts with SELinux.
func (r *Runtime) labelStore(layers mac.Layers) (*mac.LabelStore, error) {
	if !layers.SELinux {
		return nil, nil
	}
	s, err := mac.OpenLabelStore(r.opts.SELinuxDir)
	if err != nil {
		return nil, fmt.Errorf("selinux label store: %w", err)
	}
	return s, nil
}

// checkUser refuses ids the container's user namespace cannot map.
func checkUser(p *specs.Process, size uint32) error {
	ids := append([]uint32{p.User.UID, p.User.GID}, p.User.AdditionalGids...)
	for _, v := range ids {
		if v >= size {
			return floorErr("process.user id %d is outside the container's %d mapped ids", v, size)
		}
	}
	return nil
}

// madeCgroup is a container's cgroup with its directories made, and the wait for its limits.
type madeCgroup struct {
	cg     cgroups.Manager
	limits func() error
}

// makeCgroup makes the cgroup name (cgroupOf's manager) for the spec eff; a cgroup that exists
// is refused, never adopted (and later destroyed): a cgroupsPath's, and the default one's
// (bulwark/<id>), which another root's container of the same id has
// (TestDefaultCgroupOfAnotherRootRefused). Create's mkdir of each leaf is that check.
func makeCgroup(cgroupOf func() (cgroups.Manager, error), name string, eff *specs.Spec) (madeCgroup, error) {
	cg, err := cgroupOf()
	if err != nil {
		return madeCgroup{}, fmt.Errorf("cgroup %s: %w", name, err)
	}
	limits, err := cg.Create(eff.Linux.Resources)
	if errors.Is(err, cgroups.ErrExist) {
		return madeCgroup{}, fmt.Errorf("%w: cgroup %s already exists", ErrExist, name)
	}
	if err != nil {
		return madeCgroup{}, fmt.Errorf("cgroup %s: %w", name, err)
	}
	return madeCgroup{cg: cg, limits: limits}, nil
}

// startChild re-executes the sealed runtime copy as a setup child and returns the parent's end of
// the setup channel.
// With cg set, the child is born in that cgroup (see startInCgroup).
//
// onThread, if set, runs on the OS thread that forks the child, just before: what it changes on
// that thread (the namespaces it joins) the child inherits; the thread is then discarded.
func (r *Runtime) startChild(mode string, stdio IO, terminal bool, attr *syscall.SysProcAttr, cg cgroups.Manager, onThread func() error, env []string, extra ...*os.File) (*setup.Channel, *setupProc, error) {
	self, err := runtimeBinary()
	if err != nil {
		return nil, nil, err
	}
	parent, child, err := setup.SocketPair()
	if err != nil {
		return nil, nil, err
	}
	defer child.Close()
	// Unset members (and all three with a terminal: the pty replaces stdio) are /dev/null, opened
	// here, before the forking thread joins the container's cgroup.
	var files [3]*os.File
	if !terminal {
		files = [3]*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr}
	}
	for i, f := range files {
		if f != nil {
			continue
		}
		flag := os.O_WRONLY
		if i == 0 {
			flag = os.O_RDONLY
		}
		if files[i], err = os.OpenFile(os.DevNull, flag, 0); err != nil {
			parent.Close()
			return nil, nil, fmt.Errorf("start %s process: %w", mode, err)
		}
		defer files[i].Close()
	}
	cmd := &setupProc{
		path:  fmt.Sprintf("/proc/self/fd/%d", setup.FDSelf),
		args:  []string{"bulwark", mode},
		env:   append(helperEnv(mode), env...),
		files: append(append(files[:], child, self), extra...),
		attr:  attr,
	}
	start := cmd.start
	switch {
	case cg != nil:
		start = func() error { return startInCgroup(cmd, cg, onThread) }
	case onThread != nil:
		start = func() error {
			return onDisposableThread(func() error {
				if err := onThread(); err != nil {
					return err
				}
				return cmd.start()
			})
		}
	}
	if err := start(); err != nil {
		parent.Close()
		return nil, nil, fmt.Errorf("start %s process: %w", mode, err)
	}
	// A child that hangs instead of answering must not hang the caller: setup takes milliseconds.
	tv := unix.NsecToTimeval(setupTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(int(parent.Fd()), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		cmd.kill()
		cmd.Wait()
		parent.Close()
		return nil, nil, fmt.Errorf("setup channel timeout: %w", err)
	}
	return setup.NewChannel(parent), cmd, nil
}

// setupProc is a setup child started with syscall.StartProcess rather than os/exec: os's first
// start of a process in a runtime process probes pidfd support by forking and reaping a process
// of its own, on the path to the container's start (≈ 0.15 ms; issue 14). Only the setup child's
// pid is needed: it is killed and reaped by it, and never reaped elsewhere, so it cannot be
// recycled before its kill.
type setupProc struct {
	path  string
	args  []string
	env   []string
	files []*os.File // the child's descriptors 0, 1, ...
	attr  *syscall.SysProcAttr
	pid   int
}

func (p *setupProc) start() error {
	fds := make([]uintptr, len(p.files))
	for i, f := range p.files {
		fds[i] = f.Fd()
	}
	pid, _, err := syscall.StartProcess(p.path, p.args, &syscall.ProcAttr{Env: p.env, Files: fds, Sys: p.attr})
	runtime.KeepAlive(p.files)
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: p.path, Err: err}
	}
	p.pid = pid
	return nil
}

// Wait reaps the child.
func (p *setupProc) Wait() error {
	for {
		_, err := unix.Wait4(p.pid, nil, 0, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

func (p *setupProc) kill() { unix.Kill(p.pid, unix.SIGKILL) }

// setupTimeout bounds the wait for each message from a setup child.
const setupTimeout = 60 * time.Second

// donate opens every descriptor the child needs and records their indices in cfg, the idmapped
// rootfs mount rfd first (it is among the descriptors returned, to close, from then on).
//
// owner holds the host uid and gid container root maps to, userns is the container's user
// namespace.
//
// sysfs, unless -1, is a detached sysfs mount made in the network namespace the container
// joins (see startInit): it is attached where the spec mounts sysfs.
func (r *Runtime) donate(cfg *setup.Config, rfd int, owner [2]uint32, userns int, fifo string, binds *BindSources, mounts []specs.Mount, macC mac.Container, sysfs int, dir string) ([]int, error) {
	fds := []int{rfd}
	cfg.RootfsFD = 0
	cfg.FifoFD = -1
	if fifo != "" {
		ffd, err := unix.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fds, fmt.Errorf("open exec fifo: %w", err)
		}
		cfg.FifoFD = len(fds)
		fds = append(fds, ffd)
	}
	storage := -1 // the storage range's user namespace, made for the first idmapped bind
	defer func() {
		if storage >= 0 {
			unix.Close(storage)
		}
	}()
	for _, m := range mounts {
		flags, data := parseOptions(m.Options)
		if m.Type == "tmpfs" || m.Type == "devpts" || m.Type == "mqueue" {
			data = macC.MountOptions(data)
		}
		mp := setup.MountPlan{Dest: m.Destination, Type: m.Type, Source: m.Source, Flags: flags, Data: data, SrcFD: -1, Scratch: scratchTmpfs(m)}
		if opts, attrs, ok := devTmpfsPlan(mp); ok {
			dfd, err := devTmpfs(mp, opts, attrs, owner)
			if err != nil {
				return fds, fmt.Errorf("/dev: %w", err)
			}
			mp.Type, mp.SrcFD, mp.Devices = "bind", len(fds), true
			fds = append(fds, dfd)
		}
		if m.Type == "sysfs" && sysfs >= 0 {
			sfd, err := unix.FcntlInt(uintptr(sysfs), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return fds, fmt.Errorf("sysfs of the joined network namespace: %w", err)
			}
			mp.Type, mp.SrcFD = "bind", len(fds)
			fds = append(fds, sfd)
		}
		if isBind(m) {
			idmapped := -1
			if hasOpt(m.Options, "idmap") {
				if storage < 0 {
					var err error
					if storage, err = idmap.StorageUserns(owner[0], owner[1]); err != nil {
						return fds, fmt.Errorf("bind mount %s → %s: %w", m.Source, m.Destination, err)
					}
				}
				idmapped = storage
			} else if flags&unix.MS_RDONLY == 0 {
				// The floor idmaps every writable bind; a plan without it is not the floor's.
				return fds, floorErr("writable bind mount %s → %s is not idmapped", m.Source, m.Destination)
			}
			// exec on an idmapped bind is what policy granted (a tenant's volume under
			// exec_volumes): it is cleared on the clone too, since the source may be a mount
			// of its own that is noexec on the host (a sized volume's filesystem).
			exec := idmapped >= 0 && flags&unix.MS_NOEXEC == 0 && hasOpt(m.Options, "exec")
			bfd, err := detachedBind(binds, m.Source, flags, idmapped, exec)
			if err != nil {
				return fds, fmt.Errorf("bind mount %s → %s: %w", m.Source, m.Destination, err)
			}
			mp.Type, mp.SrcFD = "bind", len(fds)
			fds = append(fds, bfd)
		}
		cfg.Mounts = append(cfg.Mounts, mp)
	}
	fds = r.donateShared(cfg, userns, owner[0], macC, fds)
	return r.donateGenerated(cfg, dir, owner[0], fds)
}

// detachedBind clones the resolved source src (its descriptor in binds: the path is not walked
// again) into a detached mount tree carrying the floor's flags (read-only unless writable was
// allowed, nosuid, nodev, and noexec when asked), idmapped through the user namespace userns
// unless it is -1, ready for the child to attach with move_mount. exec clears a noexec the
// source mount carries.
func detachedBind(binds *BindSources, src string, flags uintptr, userns int, exec bool) (int, error) {
	sfd, err := binds.fd(src)
	if err != nil {
		return -1, err
	}
	ot := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	at := uint(0)
	if flags&unix.MS_REC != 0 {
		ot |= unix.AT_RECURSIVE
		at = unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(sfd, "", ot)
	if err != nil {
		return -1, fmt.Errorf("open_tree: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if flags&unix.MS_RDONLY != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if flags&unix.MS_NOEXEC != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_NOEXEC
	} else if exec {
		attr.Attr_clr |= unix.MOUNT_ATTR_NOEXEC
	}
	if userns >= 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns)
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|at, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr: %w", err)
	}
	return fd, nil
}

// openRootfs resolves the rootfs directory once into an O_PATH descriptor and returns it with its
// real path. Idmapping shifts ownership, so the host's own tree as a rootfs would hand container
// root read access to every root-owned host file: "/" is refused.
func openRootfs(rootfs string) (int, string, error) {
	fd, err := openat2.Open(unix.AT_FDCWD, rootfs, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, "", fmt.Errorf("rootfs %s is not a directory: %w", rootfs, err)
	}
	real, err := os.Readlink(fdPath(fd))
	if err != nil || real == "/" || !filepath.IsAbs(real) {
		unix.Close(fd)
		return -1, "", floorErr("rootfs %s resolves to the host's root or no host path (%q, %v)", rootfs, real, err)
	}
	return fd, real, nil
}

// awaitReady reads the child's answers until ready or error, and returns the ready message.
func awaitReady(ch *setup.Channel, consoleSocket string) (*setup.Message, error) {
	for {
		m, err := ch.Recv()
		if err != nil {
			// The child died without a word (killed, or crashed before it could report).
			return nil, fmt.Errorf("setup child exited without reporting: %w", err)
		}
		switch m.Kind {
		case setup.KindError:
			return nil, m.Error
		case setup.KindConsole:
			err := sendConsole(consoleSocket, m.Console, m.FDs)
			setup.CloseAll(m.FDs)
			if err != nil {
				return nil, err
			}
		case setup.KindReady:
			setup.CloseAll(m.FDs)
			return m, nil
		}
	}
}

// sendConsole hands the pty master to the caller's console socket as runc does: one SCM_RIGHTS
// message whose payload is the pty's name.
func sendConsole(path, name string, fds []int) error {
	if len(fds) != 1 {
		return fmt.Errorf("console message carried %d descriptors, want 1", len(fds))
	}
	if path == "" {
		return errors.New("process.terminal is set but no console socket was given")
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("connect console socket: %w", err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix([]byte(name), unix.UnixRights(fds[0]), nil); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	return nil
}
