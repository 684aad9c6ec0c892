package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine/opapolicy"
	"bulwark.dev/bulwark/policy"
)

// errDenied carries exit status 1: the request was decided and refused.
var errDenied = errors.New("request denied by policy")

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Evaluate, test and inspect the run policy",
		Long: "Every run request is decided by an OPA (Rego v1) policy: the embedded default, a policy\n" +
			"directory, or a signed OPA bundle. Undefined or failing policy denies.",
	}
	cmd.AddCommand(newPolicyEvalCmd(), newPolicyTestCmd(), newPolicyShowCmd())
	return cmd
}

// addSourceFlags registers --policy, --bundle and --verification-key on cmd.
func addSourceFlags(cmd *cobra.Command, o *policy.SourceOptions) {
	cmd.Flags().StringVar(&o.Dir, "policy", "", "policy directory (.rego modules and data.json/data.yaml; data alone uses the default rules)")
	cmd.Flags().StringVar(&o.Bundle, "bundle", "", "signed OPA bundle (.tar.gz)")
	cmd.Flags().StringVar(&o.VerificationKeyFile, "verification-key", "", "PEM public key the bundle must be signed with")
}

func sourceOptions(cmd *cobra.Command, o policy.SourceOptions) (policy.SourceOptions, error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return o, err
	}
	o.StateRoot = root
	return o, nil
}

func newPolicyEvalCmd() *cobra.Command {
	var (
		src   policy.SourceOptions
		input string
	)
	cmd := &cobra.Command{
		Use:   "eval --input FILE",
		Short: "Decide one request document and print the decision as JSON",
		Long: "Decide a bulwark.dev/run/v1 request document (see policy/schema/run-v1.schema.json).\n" +
			"Bind sources are resolved on this host first. Prints {\"allow\",\"reasons\",...};\n" +
			"exit status 0 allow, 1 deny, 125 when no decision could be made.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" {
				return errors.New("--input is required (- reads standard input)")
			}
			doc, err := readInput(cmd.InOrStdin(), input)
			if err != nil {
				return err
			}
			opts, err := sourceOptions(cmd, src)
			if err != nil {
				return err
			}
			e, err := loadEngine(cmd.Context(), opts)
			if err != nil {
				return err
			}
			d := e.DecideDocument(contextOf(cmd), doc)
			out := struct {
				Allow       bool                `json:"allow"`
				Reasons     []policy.Reason     `json:"reasons"`
				Constraints *policy.Constraints `json:"constraints,omitempty"`
				Revision    string              `json:"revision"`
			}{Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision}
			if c := d.Constraints; c.MaxMemory != nil || c.MaxPids != nil || c.Capabilities != nil {
				out.Constraints = &d.Constraints
			}
			if err := clibase.PrintJSON(cmd.OutOrStdout(), out); err != nil {
				return err
			}
			if !d.Allow {
				codes := make([]string, len(d.Reasons))
				for i, r := range d.Reasons {
					codes[i] = r.Code
				}
				return &clibase.ExitError{Code: 1, Err: fmt.Errorf("%w: %s", errDenied, strings.Join(codes, ", "))}
			}
			return nil
		},
	}
	addSourceFlags(cmd, &src)
	cmd.Flags().StringVar(&input, "input", "", "request document (JSON), - for standard input")
	return cmd
}

func newPolicyTestCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego unit tests of a policy directory (default: the embedded policy)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			p, err := policy.LoadForTests(dir)
			if err != nil {
				return err
			}
			results, err := policy.RunTests(contextOf(cmd), p)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, r := range results {
				switch {
				case r.Skip:
					if verbose {
						fmt.Fprintf(w, "SKIP %s.%s\n", r.Package, r.Name)
					}
				case r.Pass:
					passed++
					if verbose {
						fmt.Fprintf(w, "PASS %s.%s (%s)\n", r.Package, r.Name, r.Duration)
					}
				default:
					failed++
					fmt.Fprintf(w, "FAIL %s.%s (%s): %s\n", r.Package, r.Name, r.Location, r.Error)
				}
			}
			switch {
			case passed+failed == 0:
				return errors.New("no Rego tests (rules named test_*) found")
			case failed > 0:
				fmt.Fprintf(w, "FAIL: %d/%d\n", failed, passed+failed)
				return &clibase.ExitError{Code: 1, Err: fmt.Errorf("%d of %d policy tests failed", failed, passed+failed)}
			}
			fmt.Fprintf(w, "PASS: %d/%d\n", passed, passed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every test")
	return cmd
}

func newPolicyShowCmd() *cobra.Command {
	var src policy.SourceOptions
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show which policy is active: its source, location and revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := sourceOptions(cmd, src)
			if err != nil {
				return err
			}
			// Loading verifies a bundle's signature and freshness but, unlike eval, does not
			// record its revision: showing a bundle does not activate it.
			p, err := policy.Load(opts)
			if err != nil {
				return err
			}
			out := struct {
				policy.Info
				Modules          []string                 `json:"modules"`
				AcceptedRevision *policy.AcceptedRevision `json:"acceptedBundleRevision,omitempty"`
				StateRoot        string                   `json:"stateRoot"`
			}{Info: p.Info, StateRoot: opts.StateRoot}
			for name := range p.Modules {
				out.Modules = append(out.Modules, strings.TrimPrefix(name, "/"))
			}
			slices.Sort(out.Modules)
			rev, ok, err := policy.ReadAcceptedRevision(opts.StateRoot)
			if err != nil {
				return err
			}
			if ok {
				out.AcceptedRevision = &rev
			}
			return clibase.PrintJSON(cmd.OutOrStdout(), out)
		},
	}
	addSourceFlags(cmd, &src)
	return cmd
}

func loadEngine(ctx context.Context, o policy.SourceOptions) (*policy.Engine, error) {
	p, err := policy.Load(o)
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// A dry-run evaluation is not a run decision: no decision is recorded. Preparing a signed
	// bundle raises the state root's accepted revision, and that change is audited.
	return opapolicy.PrepareAudited(ctx, o.StateRoot, caller(), p, policy.WithRecorder(nil))
}

func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read request from standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	return data, nil
}
