package main

import "github.com/spf13/cobra"

func newTrustCmd() *cobra.Command {
	return &cobra.Command{Use: "trust", Short: "trust commands (not yet implemented)"}
}
