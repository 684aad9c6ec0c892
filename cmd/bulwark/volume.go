package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
)

func newVolumeCmd() *cobra.Command {
	c := &cobra.Command{Use: "volume", Short: "Manage the tenant's named volumes (local driver, under <root>/volumes/<tenant>/)"}
	c.AddCommand(newVolumeCreateCmd(), newVolumeLsCmd(), newVolumeInspectCmd(), newVolumeRmCmd(), newVolumePruneCmd())
	return c
}

func newVolumeCreateCmd() *cobra.Command {
	var tenant string
	var opts map[string]string
	var ef engineFlags
	c := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a volume for the tenant (an existing one is kept as it is)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd, &ef)
			if err != nil {
				return err
			}
			defer e.Close()
			v, err := e.CreateVolume(cmd.Context(), args[0], opts, as(tenant))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	tenantFlag(c, &tenant)
	ef.addPolicy(c) // the policy decides the volume's size
	c.Flags().StringToStringVarP(&opts, "opt", "o", nil, "driver option KEY=VALUE: size=SIZE (e.g. 10m, 1g) limits the volume, enforced by the kernel; policy sets the tenant's default and maximum")
	return c
}

func newVolumeLsCmd() *cobra.Command {
	var tenant string
	var quiet bool
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the tenant's volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				list, err := e.ListVolumes(as(tenant))
				if err != nil {
					return err
				}
				if quiet {
					for _, v := range list {
						fmt.Fprintln(cmd.OutOrStdout(), v.Name)
					}
					return nil
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
				for _, v := range list {
					fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
				}
				return tw.Flush()
			})
		},
	}
	tenantFlag(c, &tenant)
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only names")
	return c
}

func newVolumeInspectCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show volumes as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				var out []any
				for _, name := range args {
					v, err := e.InspectVolume(name, as(tenant))
					if err != nil {
						return err
					}
					out = append(out, v)
				}
				return clibase.PrintJSON(cmd.OutOrStdout(), out)
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newVolumeRmCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove volumes and their data (refused while a container of the tenant mounts one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, args, func(e *engine.Engine, name string) error {
				return e.RemoveVolume(name, as(tenant))
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newVolumePruneCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "prune",
		Short: "Remove the tenant's volumes no container mounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				names, err := e.PruneVolumes(as(tenant))
				for _, n := range names {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				return err
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}
