package main

import (
	"time"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/engine"
)

func newStartCmd() *cobra.Command {
	var tenant string
	c := &cobra.Command{
		Use:   "start CONTAINER...",
		Short: "Start stopped containers again, detached, from the plan they were run with",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error {
				return e.StartContainer(id, as(tenant))
			})
		},
	}
	tenantFlag(c, &tenant)
	return c
}

func newRestartCmd() *cobra.Command {
	var timeout int
	var tenant string
	c := &cobra.Command{
		Use:   "restart CONTAINER...",
		Short: "Stop (SIGTERM, then SIGKILL after the timeout) and start again, detached",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, args, func(e *engine.Engine, id string) error {
				return e.Restart(id, as(tenant), time.Duration(timeout)*time.Second)
			})
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before SIGKILL")
	tenantFlag(c, &tenant)
	return c
}
