package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/policy/api"
	"bulwark.dev/bulwark/signing"
)

// A reload (SIGHUP) prepares everything anew before it changes anything: the configuration's
// tenant map (when the daemon has a file), the trust root, the API policy, then the run policy;
// only when all of them load does the daemon switch to them. A failure leaves the old ones in
// place and is logged and audited (daemon reload.failed); a success is audited (daemon reload).
// Connections are not touched: the next decision on any of them uses what was reloaded.

// reloadable are the configuration's keys a reload applies; any other key that changed is
// reported as needing a restart (sockets, state root, limits, policy sources, the TLS listener).
var reloadable = []string{"tenants", "operator_uids", "operator_gids", "operator_cert_names", "operator_tenant"}

// Reload reloads and reports what it did; the error says what failed (nothing was changed).
func (s *Server) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.notifyManager("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
	defer s.notifyManager("READY=1")
	attrs, err := s.reload(ctx)
	if err != nil {
		s.log.Error("reload failed: the previous configuration and policies stay", "error", err)
		s.event("reload.failed", map[string]string{"error": err.Error()})
		return err
	}
	args := make([]any, 0, 2*len(attrs))
	for _, k := range sortedKeys(attrs) {
		args = append(args, k, attrs[k])
	}
	s.log.Info("reloaded", args...)
	s.event("reload", attrs)
	return nil
}

func (s *Server) reload(ctx context.Context) (map[string]string, error) {
	attrs := map[string]string{}
	ident := s.ident.Load()
	if s.loadConfig != nil {
		next, err := s.loadConfig()
		if err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
		restart, err := restartKeys(s.cfg, next)
		if err != nil {
			return nil, err
		}
		if len(restart) > 0 {
			attrs["restart_needed"] = strings.Join(restart, ",")
		}
		ident = &next
		attrs["tenants"] = strconv.Itoa(len(next.Tenants))
	}
	pin, err := signing.Pinned(filepath.Join(s.eng.Root(), "trust"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		attrs["trust_root"] = "none"
	case err != nil:
		return nil, fmt.Errorf("trust root: %w", err)
	default:
		attrs["trust_root"], attrs["trust_remote"] = pin.RootDigest, pin.Remote
		attrs["trust_root_version"] = strconv.FormatInt(pin.Root.Version, 10)
	}
	authz, err := api.New(ctx, s.cfg.APIPolicyDir)
	if err != nil {
		return nil, fmt.Errorf("API policy: %w", err)
	}
	attrs["api_policy"] = authz.Source
	// The run policy last: the engine switches to it as soon as it is prepared.
	info, accepted, err := s.eng.ReloadPolicy(ctx)
	if err != nil {
		return nil, fmt.Errorf("run policy: %w", err)
	}
	attrs["run_policy"], attrs["run_policy_revision"] = info.Source, info.Revision
	if accepted != nil {
		attrs["bundle_accepted"] = accepted["revision"]
	}
	s.authz.Replace(authz)
	s.ident.Store(ident)
	return attrs, nil
}

// restartKeys lists the keys that differ between cur and next and that a reload does not apply.
func restartKeys(cur, next config.Config) ([]string, error) {
	a, err := keyValues(cur)
	if err != nil {
		return nil, err
	}
	b, err := keyValues(next)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range merged(a, b) {
		if !slices.Contains(reloadable, k) && a[k] != b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// keyValues is the configuration as its top-level keys, each value in JSON.
func keyValues(c config.Config) (map[string]string, error) {
	b, err := c.JSON()
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = string(v)
	}
	return out, nil
}

func merged(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds (sd_notify's RELOADING=1 wants it).
func monotonicUsec() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}
