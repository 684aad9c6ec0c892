package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/cmd/internal/clibase"
)

// auditDir is the audit log's directory under the state root.
func auditDir(cmd *cobra.Command) string {
	root, _ := cmd.Flags().GetString("root")
	return filepath.Join(root, "audit")
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, read and anchor the tamper-evident audit trail"}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditTailCmd(), newAuditQueryCmd(), newAuditCheckpointCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var anchorPath string
	cmd := &cobra.Command{
		Use:         "verify",
		Short:       "Check the whole chain and every checkpoint; name the first bad record; repair a torn tail",
		Args:        cobra.NoArgs,
		Annotations: remote(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.AuditVerify})
			}
			var anchor *audit.Checkpoint
			if anchorPath != "" {
				b, err := os.ReadFile(anchorPath)
				if err != nil {
					return fmt.Errorf("read anchor: %w", err)
				}
				anchor = new(audit.Checkpoint)
				if err := json.Unmarshal(b, anchor); err != nil {
					return fmt.Errorf("parse anchor %s: %w", anchorPath, err)
				}
			}
			rep, err := audit.VerifyAndRepair(auditDir(cmd), anchor)
			if rep.Repaired != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "audit log had a torn tail (an interrupted write, not tampering): "+
					"cut %s bytes at %s offset %s, kept at %s; repair recorded as record %d\n",
					rep.Repaired.Attrs["torn_bytes"], rep.Repaired.Attrs["segment"], rep.Repaired.Attrs["offset"],
					rep.Repaired.Attrs["kept_at"], rep.Repaired.Seq)
			}
			if err != nil {
				return &clibase.ExitError{Code: 1, Err: fmt.Errorf("audit verify: %w", err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit chain OK: %d records (last seq %d), %d checkpoints verified%s\n",
				rep.Records, rep.LastSeq, rep.Checkpoints, map[bool]string{true: ", anchored", false: ""}[rep.Anchored])
			return nil
		},
	}
	cmd.Flags().StringVar(&anchorPath, "anchor", "", "an exported checkpoint (from 'audit checkpoint') to verify against")
	return cmd
}

func newAuditTailCmd() *cobra.Command {
	var n int
	var follow bool
	cmd := &cobra.Command{
		Use:         "tail",
		Short:       "Print the last records as JSON lines (through bulwarkd: the caller's tenant's)",
		Args:        cobra.NoArgs,
		Annotations: remote("lines"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if host := remoteOf(cmd); host != "" {
				return sendRemote(host, op.Op{Command: op.AuditTail, Lines: n})
			}
			recs, err := audit.Query(auditDir(cmd), audit.Filter{})
			if err != nil {
				return err
			}
			start := max(len(recs)-n, 0)
			if err := printRecords(cmd, recs[start:]); err != nil || !follow {
				return err
			}
			last := uint64(0)
			if len(recs) > 0 {
				last = recs[len(recs)-1].Seq
			}
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				recs, err := audit.Query(auditDir(cmd), audit.Filter{})
				if err != nil {
					return err
				}
				for _, r := range recs {
					if r.Seq > last {
						if err := printRecords(cmd, []audit.Record{r}); err != nil {
							return err
						}
						last = r.Seq
					}
				}
			}
		},
	}
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "number of records")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records")
	return cmd
}

func newAuditQueryCmd() *cobra.Command {
	var f audit.Filter
	var since string
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Print the records that match the filters as JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				t, err := parseSince(since)
				if err != nil {
					return err
				}
				f.Since = t
			}
			recs, err := audit.Query(auditDir(cmd), f)
			if err != nil {
				return err
			}
			return printRecords(cmd, recs)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "RFC 3339 time or a duration ago (e.g. 10m)")
	cmd.Flags().StringVar(&f.Tenant, "tenant", "", "only this tenant")
	cmd.Flags().StringVar(&f.ContainerID, "container", "", "only this container id")
	cmd.Flags().StringVar(&f.Type, "type", "", "only this event type (container, image, policy, trust, engine, daemon, audit)")
	return cmd
}

func newAuditCheckpointCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign a checkpoint of the current tail and print it, to keep somewhere else as an anchor",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := audit.Open(auditDir(cmd), audit.Options{})
			if err != nil {
				return err
			}
			defer l.Close()
			c, err := l.Checkpoint()
			if err != nil {
				return err
			}
			return clibase.PrintJSON(cmd.OutOrStdout(), c)
		},
	}
}

func parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time or a duration", s)
	}
	return t, nil
}

func printRecords(cmd *cobra.Command, recs []audit.Record) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
