package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/signing"
)

// loadPolicy loads the policy the engine runs with, as the engine would (a bundle's signature
// and its revision against the state root's record), once per scan; loading only reads.
func (e *Env) loadPolicy() (*policy.Policy, error) {
	if e.policyCache != nil || e.policyErr != nil {
		return e.policyCache, e.policyErr
	}
	switch {
	case e.Policy.Bundle != "":
		key, err := os.ReadFile(e.Policy.KeyFile)
		if err != nil {
			e.policyErr = fmt.Errorf("policy bundle %s: verification key: %w", e.Policy.Bundle, err)
			break
		}
		e.policyCache, e.policyErr = policy.LoadBundle(e.Policy.Bundle, policy.BundleOptions{VerificationKey: key, StateRoot: e.Root})
	case e.Policy.Dir != "":
		e.policyCache, e.policyErr = policy.LoadDir(e.Policy.Dir)
	default:
		e.policyCache, e.policyErr = policy.LoadEmbedded()
	}
	return e.policyCache, e.policyErr
}

func probePolicy(e *Env, c *Control) Outcome {
	p, err := e.loadPolicy()
	if err != nil {
		return fail("%v", err)
	}
	return pass("%s policy %s (revision %q)", p.Info.Source, p.Info.Location, p.Info.Revision)
}

// probePolicyLimits: the policy caps each container's memory and pids (data.bulwark.defaults
// max_memory and max_pids, positive), and no tenant lifts a cap (null or 0).
func probePolicyLimits(e *Env, c *Control) Outcome {
	p, err := e.loadPolicy()
	if err != nil {
		return fail("policy: %v", err)
	}
	bw, _ := p.Data["bulwark"].(map[string]any)
	defaults, _ := bw["defaults"].(map[string]any)
	var bad, details []string
	check := func(who string, m map[string]any, required bool) {
		for _, k := range []string{"max_memory", "max_pids"} {
			v, ok := m[k]
			if !ok && !required {
				continue
			}
			n, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if !ok || err != nil || n <= 0 {
				bad = append(bad, fmt.Sprintf("%s: %s %v", who, k, v))
				continue
			}
			details = append(details, fmt.Sprintf("%s: %s %.0f", who, k, n))
		}
	}
	check("defaults", defaults, true)
	tenants, _ := bw["tenants"].(map[string]any)
	names := make([]string, 0, len(tenants))
	for n := range tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if t, ok := tenants[n].(map[string]any); ok {
			check("tenant "+n, t, false)
		}
	}
	if len(bad) > 0 {
		return Outcome{Status: Fail, Actual: "memory or pids not capped", Details: append(bad, details...)}
	}
	return Outcome{Status: Pass, Actual: fmt.Sprintf("capped (%s policy)", p.Info.Source), Details: details}
}

// probePolicySigned: an operator's policy comes as a signed bundle; a plain directory is
// unsigned (the embedded default is part of the signed-off binary).
func probePolicySigned(e *Env, _ *Control) Outcome {
	switch {
	case e.Policy.Bundle != "":
		return pass("signed bundle %s", e.Policy.Bundle)
	case e.Policy.Dir != "":
		return fail("unsigned policy directory %s", e.Policy.Dir)
	}
	return pass("the embedded default policy (no operator policy)")
}

// probePolicyRevision reports the accepted bundle revision and its age.
func probePolicyRevision(e *Env, c *Control) Outcome {
	var p struct {
		MaxAge duration `json:"maxAge"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	rev, ok, err := policy.ReadAcceptedRevision(e.Root)
	if err != nil {
		return fail("%v", err)
	}
	if !ok {
		if e.Policy.Bundle != "" {
			return fail("a bundle is configured but no revision was ever accepted")
		}
		return pass("no bundle in use (no accepted revision)")
	}
	st, err := os.Stat(filepath.Join(e.Root, "policy", "bundle-revision.json"))
	if err != nil {
		return e.errOutcome(c, err)
	}
	age := e.Now.Sub(st.ModTime()).Round(time.Minute)
	if age > time.Duration(p.MaxAge) {
		return fail("revision %d accepted %s ago (%s)", rev.Revision, age, rev.Digest)
	}
	return pass("revision %d accepted %s ago (%s)", rev.Revision, age, rev.Digest)
}

// probeTrustPinned: the trust directory's client is pinned to a root that has not expired.
func probeTrustPinned(e *Env, c *Control) Outcome {
	dir := filepath.Join(e.Root, "trust")
	pin, err := signing.Pinned(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail("no trust root pinned (bulwark trust init or trust pin)")
		}
		return e.errOutcome(c, err)
	}
	tv := e.trust()
	if tv.err != nil {
		return fail("pinned root %s, metadata does not verify: %v", pin.RootDigest, tv.err)
	}
	exp := tv.expires["root"]
	if !e.Now.Before(exp) {
		return fail("root v%d expired %s", tv.rootVersion, exp.Format(time.RFC3339))
	}
	return pass("pinned %s (root v%d, now v%d), root expires %s", pin.RootDigest, pin.Root.Version, tv.rootVersion, exp.Format(time.RFC3339))
}

// probeDaemonSocket checks bulwarkd's socket: a socket, owned by root, mode within the mask.
func probeDaemonSocket(e *Env, c *Control) Outcome {
	var p struct {
		MaxMode mode `json:"maxMode"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	if e.DaemonSocket == "" {
		return skip("no daemon socket configured")
	}
	fi, err := os.Lstat(e.DaemonSocket)
	if errors.Is(err, os.ErrNotExist) {
		return skip("no daemon socket at %s", e.DaemonSocket)
	}
	if err != nil {
		return e.errOutcome(c, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	perm := uint32(fi.Mode().Perm())
	switch {
	case fi.Mode()&os.ModeSocket == 0:
		return fail("%s is not a socket (%s)", e.DaemonSocket, fi.Mode().Type())
	case st.Uid != 0:
		return fail("%s owned by uid %d", e.DaemonSocket, st.Uid)
	case perm&^uint32(p.MaxMode) != 0:
		return fail("%s mode %04o exceeds %04o by %04o", e.DaemonSocket, perm, uint32(p.MaxMode), perm&^uint32(p.MaxMode))
	}
	return pass("%s uid %d gid %d mode %04o", e.DaemonSocket, st.Uid, st.Gid, perm)
}

// duration is a time.Duration written as a string in the catalog ("24h").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := jsonString(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = duration(v)
	return nil
}
