package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// The bulwark CLI's commands through the daemon, printing as the local commands print.

// DryRun is bulwark run --dry-run through the daemon: the decision's summary on errOut, the plan
// (the effective, floor-raised configuration) on out; a denial is the error, every reason in it.
func (c *Client) DryRun(ctx context.Context, req *engine.Request, out, errOut io.Writer) error {
	d, err := c.Decide(ctx, CreateRequest(req))
	if err != nil {
		return err
	}
	if d.Summary != "" {
		fmt.Fprint(errOut, d.Summary)
	}
	if len(d.Plan) > 0 {
		fmt.Fprintf(out, "%s\n", d.Plan)
	}
	if d.Allow {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "denied (revision %s):", d.Revision)
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "\n  %s: %s", r.Code, r.Message)
		if r.Path != "" {
			fmt.Fprintf(&b, " [%s]", r.Path)
		}
	}
	return errdefs.New(errdefs.ErrRefusedByPolicy, b.String())
}

// PS lists the caller's containers (running ones unless all; ids only with quiet).
func (c *Client) PS(ctx context.Context, out io.Writer, all, quiet bool) error {
	list, err := c.List(ctx, all)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if !quiet {
		fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
	}
	for _, s := range list {
		if quiet {
			fmt.Fprintln(tw, s.ID)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s ago\t%s\t%s\n", s.ID[:min(12, len(s.ID))], s.Image, s.Command,
			time.Since(time.Unix(s.Created, 0)).Round(time.Second), s.Status, strings.TrimPrefix(strings.Join(s.Names, ","), "/"))
	}
	return tw.Flush()
}

// InspectAll prints the inspect documents of ids as one JSON array.
func (c *Client) InspectAll(ctx context.Context, out io.Writer, ids []string) error {
	docs := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		d, err := c.Inspect(ctx, id)
		if err != nil {
			return err
		}
		docs = append(docs, d)
	}
	b, err := json.MarshalIndent(docs, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// PrintLogs copies a container's log (until it exits, with follow) to out and errOut.
func (c *Client) PrintLogs(ctx context.Context, out, errOut io.Writer, id string, follow, timestamps bool) error {
	rd, raw, err := c.Logs(ctx, id, follow, timestamps)
	if err != nil {
		return err
	}
	defer rd.Close()
	if raw {
		_, err = io.Copy(out, rd)
	} else {
		_, err = stdcopy.StdCopy(out, errOut, rd)
	}
	return err
}

// forEach calls fn for every id and prints the ids that succeeded, and the errors, as docker
// does; it reports whether any failed.
func forEach(out, errOut io.Writer, ids []string, fn func(id string) error) (failed bool) {
	for _, id := range ids {
		if err := fn(id); err != nil {
			fmt.Fprintf(errOut, "bulwark: %s: %v\n", id, err)
			failed = true
			continue
		}
		fmt.Fprintln(out, id)
	}
	return failed
}

// AuditTail prints the caller's last n audit records as JSON lines.
func (c *Client) AuditTail(ctx context.Context, out io.Writer, n int) error {
	resp, err := c.Audit(ctx, "", n)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for _, r := range resp.Records {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// ErrChainBroken is a verification the daemon reports failed.
var ErrChainBroken = errors.New("audit verify")

// PrintAuditVerify prints the daemon's verification of the audit chain; a broken chain is an
// ErrChainBroken error naming the first bad record.
func (c *Client) PrintAuditVerify(ctx context.Context, out io.Writer) error {
	v, err := c.AuditVerify(ctx)
	if err != nil {
		return err
	}
	if !v.OK {
		return fmt.Errorf("%w: %s", ErrChainBroken, v.Error)
	}
	if v.Records > 0 {
		fmt.Fprintf(out, "audit chain OK (verified by bulwarkd): %d records (last seq %d), %d checkpoints verified; tenant %s: %d records\n",
			v.Records, v.LastSeq, v.Checkpoints, v.Tenant, v.OwnRecords)
		return nil
	}
	fmt.Fprintf(out, "audit chain OK (verified by bulwarkd): %d checkpoints verified; tenant %s: %d records in it\n", v.Checkpoints, v.Tenant, v.OwnRecords)
	return nil
}

// TrustStatus prints the trust the daemon verifies runs against: the pinned repository, every
// role the caller may see and the signed tags it may use.
func (c *Client) TrustStatus(ctx context.Context, out io.Writer) error {
	t, err := c.Trust(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "repository %s, pinned root %s\n", t.Remote, t.RootDigest)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tVERSION\tEXPIRES\tTHRESHOLD\tKEYS\tPATHS")
	for _, r := range t.Roles {
		exp := r.Expires.Format(time.RFC3339)
		if r.Version == 0 {
			exp = "(not signed yet)"
		} else if r.Expired {
			exp += " EXPIRED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%v\n", r.Role, r.Version, exp, r.Threshold, r.Keys, r.Paths)
	}
	fmt.Fprintln(tw, "\nREPOSITORY\tTAG\tDIGEST\tSIGNED BY")
	for _, rp := range t.Repositories {
		for _, tag := range rp.Tags {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rp.Name, tag.Tag, tag.Digest, tag.Role)
		}
	}
	return tw.Flush()
}
