package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
)

func newSystemCmd() *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "The state root as a whole"}
	c.AddCommand(newSystemDfCmd())
	return c
}

func newSystemDfCmd() *cobra.Command {
	var tenant string
	var verbose, allTenants, asJSON bool
	c := &cobra.Command{
		Use:   "df",
		Short: "Show disk usage: images and layers (shared), the tenant's containers and volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				du, err := e.DiskUsage(as(tenant), allTenants)
				if err != nil {
					return err
				}
				if asJSON {
					return clibase.PrintJSON(cmd.OutOrStdout(), du)
				}
				if verbose {
					return printDfVerbose(cmd.OutOrStdout(), du)
				}
				return printDfSummary(cmd.OutOrStdout(), du)
			})
		},
	}
	tenantFlag(c, &tenant)
	c.Flags().BoolVar(&allTenants, "all-tenants", false, "containers and volumes of every tenant")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "one line per image, layer, container and volume")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// dfRow sums one kind of item: all of them, those in use, and what removing the rest frees.
type dfRow struct {
	total, active int
	size, free    int64
}

func (r *dfRow) add(size int64, active bool) {
	r.total++
	r.size += size
	if active {
		r.active++
	} else {
		r.free += size
	}
}

func printDfSummary(w io.Writer, du *engine.DiskUsage) error {
	var img, lay, ctr, vol dfRow
	for _, i := range du.Images {
		img.add(i.Size, i.Containers > 0)
	}
	for _, l := range du.Layers {
		lay.add(l.Size, l.Images > 0 || l.Containers > 0)
	}
	for _, c := range du.Containers {
		ctr.add(c.Size, c.Status == "running" || c.Status == "paused" || c.Status == "created")
	}
	for _, v := range du.Volumes {
		vol.add(v.Size, v.Containers > 0)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	for _, r := range []struct {
		name string
		row  dfRow
	}{{"Images", img}, {"Layers", lay}, {"Containers", ctr}, {"Volumes", vol}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", r.name, r.row.total, r.row.active, human(uint64(r.row.size)), human(uint64(r.row.free)))
	}
	return tw.Flush()
}

func printDfVerbose(w io.Writer, du *engine.DiskUsage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tCONTAINERS")
	for _, i := range du.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", i.Ref, i.Digest, human(uint64(i.Size)), i.Containers)
	}
	fmt.Fprintln(tw, "\nLAYER\tSIZE\tIMAGES\tCONTAINERS")
	for _, l := range du.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", l.DiffID, human(uint64(l.Size)), l.Images, l.Containers)
	}
	fmt.Fprintln(tw, "\nCONTAINER\tTENANT\tIMAGE\tSTATUS\tSIZE")
	for _, c := range du.Containers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Tenant, c.Image, c.Status, human(uint64(c.Size)))
	}
	fmt.Fprintln(tw, "\nVOLUME\tTENANT\tSIZE\tLIMIT\tCONTAINERS")
	for _, v := range du.Volumes {
		limit := "-"
		if v.Limit > 0 {
			limit = human(uint64(v.Limit))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", v.Name, v.Tenant, human(uint64(v.Size)), limit, v.Containers)
	}
	return tw.Flush()
}
