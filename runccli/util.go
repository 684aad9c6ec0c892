package runccli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/engine/runcgate"
	"bulwark.dev/bulwark/internal/specjson"
	"bulwark.dev/bulwark/sandbox"
)

// cliContext gives subcommands the parsed global flags, the logger (created after parsing) and the
// name of the command being run.
type cliContext struct {
	g       *globalOpts
	log     func() *logger
	command string
	// pol is the policy session started for this command before its logger was opened
	// (startPolicy), until the command takes it (beginPolicy).
	pol *runcgate.Session
}

func (c *cliContext) runtime() (*sandbox.Runtime, error) {
	rt, err := sandbox.New(sandbox.Options{
		Root: c.g.root,
		// One id allocator and one SELinux label store per host: containerd runs one --root per
		// namespace, and ranges or MCS pairs handed out under each --root would overlap (tenant
		// A's root = tenant B's root).
		IDMapDir:   filepath.Join(c.g.policy.stateRoot, "idmap"),
		SELinuxDir: filepath.Join(c.g.policy.stateRoot, "selinux"),
		// Only the caller's tenant's containers are found; a refusal is audited.
		Tenant:     c.g.tenant,
		AllowNoMAC: c.g.allowNoMAC,
		Events: runcgate.AuditRefusals(c.gateConfig(), c.command, c.log(),
			func(err error) { c.log().Error(err.Error()) }),
		Steps: c.log(),
	})
	if err != nil {
		return nil, fmt.Errorf("open state root %s: %w", c.g.root, err)
	}
	return rt, nil
}

// load returns the container named by id.
func (c *cliContext) load(id string) (*sandbox.Container, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	rt, err := c.runtime()
	if err != nil {
		return nil, err
	}
	ct, err := rt.Load(id)
	if err != nil {
		if errors.Is(err, sandbox.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return ct, nil
}

func validateID(id string) error {
	if id == "" {
		return errors.New("container id cannot be empty")
	}
	return sandbox.ValidateID(id)
}

// idArg is the positional-argument check for commands taking exactly one container id.
func idArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s: expected exactly one container id, got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

// parseSignal accepts what runc's kill accepts: a number, or a name with or without the SIG prefix
// in any case (9, KILL, SIGKILL, sigterm).
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

// writePidFile writes pid atomically (temp file + rename in the same directory) so a caller polling
// for the file never reads a partial number; containerd's shim reads it right after create returns.
func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// loadBundle reads and checks <bundle>/config.json. The checks here only make errors clear before any
// state is created; the sandbox validates everything again and is the authority.
func loadBundle(bundle string) (string, *specs.Spec, error) {
	if bundle == "" {
		bundle = "."
	}
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return "", nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	data, err := os.ReadFile(filepath.Join(abs, "config.json"))
	if err != nil {
		return "", nil, fmt.Errorf("read bundle config: %w", err)
	}
	// What encoding/json decodes, without its reflection in the common case (specjson).
	spec, err := specjson.Decode(data)
	if err != nil {
		return "", nil, fmt.Errorf("parse %s: %w", filepath.Join(abs, "config.json"), err)
	}
	if spec.Process == nil {
		return "", nil, errors.New("config.json: process is required")
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return "", nil, errors.New("config.json: root.path is required")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(abs, rootfs)
	}
	fi, err := os.Stat(rootfs)
	if err != nil {
		return "", nil, fmt.Errorf("rootfs: %w", err)
	}
	if !fi.IsDir() {
		return "", nil, fmt.Errorf("rootfs %s is not a directory", rootfs)
	}
	return abs, spec, nil
}
