package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bulwark.dev/bulwark/bench"
	"bulwark.dev/bulwark/bench/format"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/daemon/config"
)

func newBenchCmd() *cobra.Command {
	var o bench.Options
	var out, colour string
	var exitCode int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Check the host, the engine's files and every running container against the CIS-mapped controls (read-only)",
		Long: "bench checks the host, Bulwark's configuration and files, its images and trust metadata, and every\n" +
			"running container as the kernel shows it (/proc), against controls mapped to the CIS Docker Benchmark\n" +
			"(docs/bench.md). It only reads. As a user other than root it skips, and names, the controls that need root.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Root, _ = cmd.Flags().GetString("root")
			o.RunRoot, _ = cmd.Flags().GetString("run-root")
			// The binary checked is bulwark, which executed this one from beside it.
			if exe, err := os.Executable(); err == nil {
				o.Executable, _ = filepath.EvalSymlinks(filepath.Join(filepath.Dir(exe), "bulwark"))
			}
			useColour, err := colourFor(colour, out)
			if err != nil {
				return err
			}
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := format.Write(cmd.OutOrStdout(), rep, out, useColour); err != nil {
				return err
			}
			if out != "text" {
				fmt.Fprintln(cmd.ErrOrStderr(), format.SummaryLine(rep))
			}
			if exitCode != 0 && rep.Failed() {
				return &clibase.ExitError{Code: exitCode, Err: errors.New("")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Targets, "target", []string{bench.TargetBulwark}, "container sources to scan: bulwark (the state root), docker (--docker-socket), runc (--runc-root); repeatable")
	f.StringVar(&o.DockerSocket, "docker-socket", "/var/run/docker.sock", "Docker Engine API socket (--target docker)")
	f.StringVar(&o.RuncRoot, "runc-root", "", "runc's --root state directory (--target runc)")
	f.StringVar(&o.DaemonSocket, "daemon-socket", config.DefaultSocket, "bulwarkd's socket (its control is skipped when absent)")
	f.StringVar(&o.Policy.Dir, "policy-dir", "", "the policy directory the engine runs with")
	f.StringVar(&o.Policy.Bundle, "policy-bundle", "", "the signed OPA bundle the engine runs with")
	f.StringVar(&o.Policy.KeyFile, "policy-key", "", "PEM public key the bundle must be signed with")
	f.StringSliceVar(&o.Check, "check", nil, "run only these controls (ids or sections: host, engine, files, images, runtime, operations)")
	f.StringSliceVar(&o.Exclude, "exclude", nil, "skip these controls (ids or sections)")
	f.StringVar(&out, "format", "text", "output: text, json (schema: bench/format/report.schema.json), junit, sarif")
	f.StringVar(&colour, "color", "auto", "colour the text output: auto (on a terminal), always, never")
	f.IntVar(&exitCode, "exit-code", 0, "exit with this status when a scored control fails (0: always exit 0 after a scan)")
	return cmd
}

// colourFor decides whether the text output is coloured.
func colourFor(mode, out string) (bool, error) {
	switch mode {
	case "always":
		return out == "text", nil
	case "never":
		return false, nil
	case "auto":
		return out == "text" && term.IsTerminal(int(os.Stdout.Fd())), nil
	}
	return false, fmt.Errorf("--color %q: want auto, always or never", mode)
}
