package main

import (
	"fmt"
	"net/netip"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
)

func newNetworkCmd() *cobra.Command {
	c := &cobra.Command{Use: "network", Short: "Manage the tenant's networks (bridges through CNI)"}
	c.AddCommand(newNetworkCreateCmd(), newNetworkLsCmd(), newNetworkInspectCmd(), newNetworkRmCmd(), newNetworkPruneCmd())
	return c
}

func newNetworkCreateCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "create NAME",
		Short: "Define a network for the tenant (a bridge with its own /24; made on first attach)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				n, err := e.NetworkCreate(as(tenant), args[0], netip.Prefix{})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), n.Name)
				return nil
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newNetworkLsCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the tenant's networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				list, err := e.NetworkList(as(tenant))
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSUBNET\tBRIDGE\tCONTAINERS")
				for _, n := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", n.Name, n.Subnet, n.Bridge, len(n.Containers))
				}
				return tw.Flush()
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newNetworkInspectCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show networks as JSON (subnet, gateway, bridge, attached containers)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				var out []any
				for _, name := range args {
					n, err := e.NetworkInspect(as(tenant), name)
					if err != nil {
						return err
					}
					out = append(out, n)
				}
				return clibase.PrintJSON(cmd.OutOrStdout(), out)
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newNetworkRmCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove networks (refused while containers are attached)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, args, func(e *engine.Engine, name string) error {
				return e.NetworkRemove(as(tenant), name)
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newNetworkPruneCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "prune",
		Short: "Release what gone or stopped containers still hold (leases, port mappings, rules), then remove the tenant's unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withEngine(cmd, func(e *engine.Engine) error {
				removed, got, err := e.NetworkPrune(as(tenant))
				out := cmd.OutOrStdout()
				if got != nil {
					for _, c := range got.Containers {
						fmt.Fprintln(out, "released container", c)
					}
					for _, l := range got.Leases {
						fmt.Fprintln(out, "released lease", l)
					}
					for _, r := range got.Rules {
						fmt.Fprintln(out, "removed rule", r)
					}
				}
				for _, n := range removed {
					fmt.Fprintln(out, "removed network", n)
				}
				return err
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

const resolverCmdName = "__resolver"

// newResolverCmd is the hidden command a network's resolver runs as (engine.Config.Resolver):
// bulwark-admin's (engine.ResolverCommand) in its place, which reports readiness on descriptor 3.
func newResolverCmd() *cobra.Command {
	return &cobra.Command{
		Use:    resolverCmdName + " TENANT NETWORK",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := cmd.Flags().GetString("root")
			if err != nil {
				return err
			}
			return execAdmin([]string{"--root", root, engine.ResolverCommand, args[0], args[1]})
		},
	}
}
