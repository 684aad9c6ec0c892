// Command bulwark-admin holds the bulwark CLI's commands that link OPA, go-tuf and sigstore or
// go-containerregistry: `policy` (eval, test, show), `bench` (which reads the policy it checks),
// `trust`, `image pull` and `image push` (package image/registry), and the full TUF refresh of
// a run whose reference the record of the last one cannot answer (engine.HelperTrust) — and
// those that link net/http and the Moby API types or libcni: every command bulwark sends to
// bulwarkd with --host (package client, op.Command) and a network's CNI plugins
// (engine.HelperCNI). bulwark executes it from beside itself for those, so that bulwark itself —
// started for every run — links none of them (engine.HelperPolicies decides its runs through
// bulwark-policy).
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/internal/privilege"
	"bulwark.dev/bulwark/sandbox"
)

func main() {
	if b, ok := os.LookupEnv(engine.AdminBuildEnv); ok {
		os.Unsetenv(engine.AdminBuildEnv)
		if b != sandbox.BuildID() {
			fmt.Fprintf(os.Stderr, "bulwark: bulwark-admin of build %q cannot serve bulwark of build %q: install the binaries of one build together\n", sandbox.BuildID(), b)
			os.Exit(125)
		}
	}
	clibase.Execute(newRootCmd())
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "bulwark",
		Short:         "A security-hardened sandbox runtime (its commands that evaluate the policy)",
		SilenceUsage:  true,
		SilenceErrors: true,
		// As bulwark's: none of these but `trust status` (without flags) goes through bulwarkd;
		// bench only reads (and skips what needs root), the others need root.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// The command bulwark sends to bulwarkd (remote.go) needs no root, as with bulwark.
			if cmd.Name() == "help" || cmd.Name() == op.Command {
				return nil
			}
			if host, _ := cmd.Flags().GetString("host"); host != "" && !cmd.Hidden {
				path := cmd.CommandPath()[len(cmd.Root().Name())+1:]
				if path != "trust status" {
					return fmt.Errorf("'%s' cannot go through bulwarkd (--host or %s is set): run it without them on the daemon's host", path, op.HostEnv)
				}
				var refused []string
				cmd.Flags().Visit(func(f *pflag.Flag) {
					if f.Name != "host" {
						refused = append(refused, "--"+f.Name)
					}
				})
				if len(refused) > 0 {
					return fmt.Errorf("'%s': %s cannot go through bulwarkd (--host or %s is set; the daemon takes the tenant and the state root from its own configuration)", path, strings.Join(refused, ", "), op.HostEnv)
				}
				return nil
			}
			if cmd.Name() == "bench" {
				return nil
			}
			return privilege.Require()
		},
	}
	root.PersistentFlags().String("root", clibase.DefaultRoot(), "state root (env "+clibase.StateRootEnv+")")
	root.PersistentFlags().String("run-root", os.Getenv(clibase.RunRootEnv), "per-run runtime state, as bulwark's (env "+clibase.RunRootEnv+")")
	root.PersistentFlags().String("host", os.Getenv(op.HostEnv), "trust status through bulwarkd at unix:///path/to/bulwark.sock (env "+op.HostEnv+"); the other commands refuse it")
	root.AddCommand(newPolicyCmd(), newBenchCmd(), newTrustCmd(), newTrustResolveCmd(), newImageCmd(), newZstdDecodeCmd(), newCNICmd(), newResolverCmd(), newRemoteCmd())
	return root
}

func caller() engine.Identity {
	return engine.Identity{UID: os.Getuid(), GID: os.Getgid()}
}
