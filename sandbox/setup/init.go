// Package setup is the setup child's side of the sandbox runtime: the process the runtime
// executes (bulwark-init, or an unstamped runtime binary itself) to set up a container's init or
// an exec'd process, and the setup protocol both sides speak (the channel, its messages, the plan
// the runtime sends). The runtime's side is package sandbox; bulwark-init links only this.
package setup

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	// Its C constructor joins (exec) or enters (init) the container's namespaces before the Go
	// runtime starts threads: every setup child links it.
	"bulwark.dev/bulwark/sandbox/internal/nsenter"
)

// The child side of the setup protocol. The runtime re-executes its sealed copy with argv[1] and
// the _BULWARK_SETUP environment variable both naming the mode; Init then confines the process
// step by step on the main OS thread and finally executes the workload. Namespace membership,
// capabilities, no_new_privs and Landlock domains belong to a thread, and the thread that applies
// them must be the one that calls execve: hence the lock below, taken before main runs.

func init() {
	if setupMode() != "" {
		runtime.LockOSThread()
	}
}

func setupMode() string {
	mode := os.Getenv(EnvSetup)
	if (mode == "init" || mode == "exec") && len(os.Args) > 1 && os.Args[1] == mode {
		return mode
	}
	return ""
}

// Init runs the container-side setup when the binary was re-executed by the runtime; otherwise it
// returns at once. Programs using this package must call it first thing in main (tests: TestMain).
// In setup mode it never returns: it executes the workload or exits with status 1 after sending
// the failure to the runtime.
func Init() {
	mode := setupMode()
	if mode == "" {
		return
	}
	clk := NewStepClock()
	// CVE-2019-5736: nothing inside the container may open this process's memory or exe link.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	openSelfStatus()
	// Where the constructor closed them (close_range), looking for leaked descriptors would only
	// read /proc/self/status and probe its every slot again.
	if !nsenter.LeaksClosed() {
		closeInherited(FDSelf)
	}
	ch := NewChannel(os.NewFile(FDChannel, "bulwark-channel"))
	ierr := checkBuild()
	if ierr == nil {
		ierr = childSetup(mode, ch, clk)
	}
	ch.Send(&Message{Kind: KindError, Error: ierr})
	os.Exit(1)
}

// childSetup only returns on failure.
func childSetup(mode string, ch *Channel, clk *StepClock) *InitError {
	m, err := ch.Recv()
	clk.Lap("child:config")
	if err != nil {
		return stepError("protocol", "receive config", "", err)
	}
	cfg := m.Config
	if cfg == nil {
		return stepError("protocol", "receive config", "", errString("config message without a plan"))
	}
	unix.Close(FDSelf)
	fifo := -1
	var detached func() error
	if mode == "init" {
		var ierr *InitError
		if detached, ierr = setupContainer(cfg, m.FDs, clk); ierr != nil {
			return ierr
		}
		if cfg.FifoFD >= 0 && cfg.FifoFD < len(m.FDs) {
			fifo = m.FDs[cfg.FifoFD]
		}
	}
	// The donated mount trees are attached now; their descriptors (directories outside the new
	// root once detached) go before anything resolves the workload's cwd (CVE-2024-21626).
	for _, fd := range m.FDs {
		if fd != fifo {
			unix.Close(fd)
		}
	}
	return finishProcess(ch, &cfg.Process, fifo, detached, clk)
}

type errString string

func (e errString) Error() string { return string(e) }

// setupContainer builds the container around init: cgroup namespace, filesystem, identity, network.
// The host's tree is still being detached when it returns (see pivot): detached waits for it.
func setupContainer(cfg *Config, fds []int, clk *StepClock) (detached func() error, ierr *InitError) {
	// The parent put us in the container's cgroup before sending the config; unsharing now makes
	// that cgroup the root of the container's view.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return nil, stepError("namespaces", "unshare(CLONE_NEWCGROUP)", "", err)
	}
	detached, ierr = setupRootfs(cfg, fds)
	if ierr != nil {
		return nil, ierr
	}
	clk.Lap("child:mounts")
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return nil, stepError("uts", "sethostname", "", err)
		}
	}
	if cfg.Domainname != "" {
		if err := unix.Setdomainname([]byte(cfg.Domainname)); err != nil {
			return nil, stepError("uts", "setdomainname", "", err)
		}
	}
	// A joined network namespace (a pod's) is its owner's to configure, loopback included.
	if !cfg.NetJoined {
		if err := loopbackUp(); err != nil {
			return nil, stepError("network", "bring up lo", "", err)
		}
	}
	clk.Lap("child:uts+net")
	return detached, nil
}

// loopbackUp sets IFF_UP on "lo" in the new, otherwise empty, network namespace.
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}
