package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/client"
	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/opapolicy"
	"bulwark.dev/bulwark/engine/truststate"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/image/zstd"
	"bulwark.dev/bulwark/signing"
)

func trustDir(cmd *cobra.Command) (string, error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "trust"), nil
}

func openRepo(cmd *cobra.Command, rootKeys string) (*signing.Repo, error) {
	dir, err := trustDir(cmd)
	if err != nil {
		return nil, err
	}
	r := signing.NewRepo(dir)
	r.RootKeys = rootKeys
	return r, nil
}

// auditTrust records a trust change in the state root's audit log (truststate.RecordTrustChange).
func auditTrust(cmd *cobra.Command, c truststate.TrustChange) error {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return err
	}
	return truststate.RecordTrustChange(root, caller(), c)
}

func newTrustCmd() *cobra.Command {
	c := &cobra.Command{Use: "trust", Short: "TUF trust: sign image references and verify them"}
	c.AddCommand(newTrustInitCmd(), newTrustKeygenCmd(), newTrustSignCmd(), newTrustDelegateCmd(), newTrustRotateCmd(),
		newTrustStatusCmd(), newTrustRefreshCmd(), newTrustServeCmd(), newTrustPinCmd(), newTrustVerifyCmd())
	return c
}

func newTrustInitCmd() *cobra.Command {
	var o signing.InitOptions
	var rootKeys string
	c := &cobra.Command{
		Use:   "init [--threshold N --keys K]",
		Short: "Create keys and the first signed metadata; pin this repository for verification",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openRepo(cmd, rootKeys)
			if err != nil {
				return err
			}
			if err := r.Init(o); err != nil {
				return err
			}
			root, err := os.ReadFile(filepath.Join(r.Dir, "1.root.json"))
			if err != nil {
				return err
			}
			dir, _ := trustDir(cmd)
			if err := signing.Pin(dir, r.Dir, root); err != nil {
				return err
			}
			if err := auditTrust(cmd, truststate.TrustChange{Action: "init"}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository %s, keys %s\n", r.Dir, r.Keys)
			return nil
		},
	}
	c.Flags().IntVar(&o.Threshold, "threshold", 1, "signatures required for each top-level role")
	c.Flags().IntVar(&o.Keys, "keys", 0, "keys per top-level role (default: threshold)")
	c.Flags().StringVar(&rootKeys, "root-keys", "", "directory for the root private keys (e.g. offline media)")
	return c
}

func newTrustKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen FILE",
		Short: "Generate an ed25519 key (FILE, mode 0600) and its public half (FILE.pub) for a tenant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := signing.GenerateKey()
			if err != nil {
				return err
			}
			if err := k.WritePrivate(args[0]); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.ID)
			return nil
		},
	}
}

func newTrustSignCmd() *cobra.Command {
	var role, keyFile, dgst, mediaType string
	var length int64
	c := &cobra.Command{
		Use:   "sign NAME:TAG",
		Short: "Sign NAME:TAG (and NAME@DIGEST) as the manifest of the local image, or of --digest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := signing.Target{Name: args[0], Digest: digest.Digest(dgst), Length: length, MediaType: mediaType}
			if dgst == "" {
				root, err := cmd.Flags().GetString("root")
				if err != nil {
					return err
				}
				s, err := image.Open(root)
				if err != nil {
					return err
				}
				desc, err := s.Resolve(args[0])
				if err != nil {
					return err
				}
				// Sign only what the store really holds.
				if _, err := s.Manifest(desc); err != nil {
					return err
				}
				t.Digest, t.Length, t.MediaType = desc.Digest, desc.Size, desc.MediaType
			}
			o := signing.SignOptions{Role: role}
			if role != "" {
				k, err := signing.LoadPrivate(keyFile)
				if err != nil {
					return err
				}
				o.Key = k
			}
			r, err := openRepo(cmd, "")
			if err != nil {
				return err
			}
			if err := r.Sign(t, o); err != nil {
				return err
			}
			if err := auditTrust(cmd, truststate.TrustChange{Action: "sign", Role: role, Target: &t}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", t.Name, t.Digest)
			return nil
		},
	}
	c.Flags().StringVar(&role, "role", "", "delegated role (tenant) to sign as; default the top-level targets role")
	c.Flags().StringVar(&keyFile, "key", "", "the tenant's private key file (with --role)")
	c.Flags().StringVar(&dgst, "digest", "", "manifest digest to sign instead of the local image's")
	c.Flags().Int64Var(&length, "length", 0, "manifest length (with --digest)")
	c.Flags().StringVar(&mediaType, "media-type", "application/vnd.oci.image.manifest.v1+json", "manifest media type (with --digest)")
	return c
}

func newTrustDelegateCmd() *cobra.Command {
	var keyFile string
	var paths []string
	c := &cobra.Command{
		Use:   "delegate TENANT --key PUB --paths 'TENANT/*'",
		Short: "Let TENANT sign its own images (and nobody else's) with its key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := signing.LoadPublic(keyFile)
			if err != nil {
				return err
			}
			r, err := openRepo(cmd, "")
			if err != nil {
				return err
			}
			if err := r.Delegate(args[0], pub, paths); err != nil {
				return err
			}
			return auditTrust(cmd, truststate.TrustChange{Action: "delegate", Role: args[0]})
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "the tenant's public key file (required)")
	c.Flags().StringSliceVar(&paths, "paths", nil, "path patterns, each below TENANT/ (required)")
	c.MarkFlagRequired("key")
	c.MarkFlagRequired("paths")
	return c
}

func newTrustRotateCmd() *cobra.Command {
	var rootKeys string
	c := &cobra.Command{
		Use:   "rotate ROLE",
		Short: "Replace the keys of root, targets, snapshot or timestamp",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openRepo(cmd, rootKeys)
			if err != nil {
				return err
			}
			if err := r.Rotate(args[0]); err != nil {
				return err
			}
			return auditTrust(cmd, truststate.TrustChange{Action: "rotate", Role: args[0]})
		},
	}
	c.Flags().StringVar(&rootKeys, "root-keys", "", "directory holding the root private keys")
	return c
}

func newTrustStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show version, expiry and keys of every role (through bulwarkd: as verified, and the signed tags the caller may use)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if host, _ := cmd.Flags().GetString("host"); host != "" {
				// Through bulwarkd: its tenant's view (checked in main's PersistentPreRunE).
				c, err := client.New(host)
				if err != nil {
					return err
				}
				return c.TrustStatus(cmd.Context(), cmd.OutOrStdout())
			}
			r, err := openRepo(cmd, "")
			if err != nil {
				return err
			}
			st, err := r.Status()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tVERSION\tEXPIRES\tTHRESHOLD\tKEYS\tTARGETS\tPATHS")
			for _, s := range st {
				exp := s.Expires.Format(time.RFC3339)
				if s.Version == 0 {
					exp = "(not signed yet)"
				} else if s.Expired {
					exp += " EXPIRED"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%v\n", s.Role, s.Version, exp, s.Threshold, s.Keys, s.Targets, s.Paths)
			}
			return tw.Flush()
		},
	}
}

func newTrustRefreshCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "refresh",
		Short: "Re-sign the timestamp (and the snapshot when it nears expiry); run periodically",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openRepo(cmd, "")
			if err != nil {
				return err
			}
			if err := r.Refresh(); err != nil {
				return err
			}
			return auditTrust(cmd, truststate.TrustChange{Action: "refresh"})
		},
	}
}

func newTrustServeCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8470]",
		Short: "Serve the repository's metadata over HTTP (static files)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openRepo(cmd, "")
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s on http://%s/\n", r.Dir, l.Addr())
			srv := &http.Server{Handler: http.FileServer(http.Dir(r.Dir)), ReadHeaderTimeout: 10 * time.Second}
			return srv.Serve(l)
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8470", "listen address")
	return c
}

func newTrustPinCmd() *cobra.Command {
	var rootFile, remote string
	c := &cobra.Command{
		Use:   "pin --root-file root.json --remote URL|DIR",
		Short: "Trust the repository at URL (or directory) under the given root",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := os.ReadFile(rootFile)
			if err != nil {
				return err
			}
			dir, err := trustDir(cmd)
			if err != nil {
				return err
			}
			if err := signing.Pin(dir, remote, root); err != nil {
				return err
			}
			return auditTrust(cmd, truststate.TrustChange{Action: "pin"})
		},
	}
	c.Flags().StringVar(&rootFile, "root-file", "", "root.json to pin (required)")
	c.Flags().StringVar(&remote, "remote", "", "repository URL or directory (required)")
	c.MarkFlagRequired("root-file")
	c.MarkFlagRequired("remote")
	return c
}

func newTrustVerifyCmd() *cobra.Command {
	var offline bool
	c := &cobra.Command{
		Use:   "verify NAME:TAG|NAME@DIGEST",
		Short: "Refresh TUF metadata, print the signed digest, and check the local image (every blob) against it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := cmd.Flags().GetString("root")
			if err != nil {
				return err
			}
			// A verification decides nothing: no policy is loaded.
			e, err := engine.Open(engine.Config{Root: root, Policies: opapolicy.Policies{}, Trust: signing.Resolver{}, Zstd: zstd.Decode})
			if err != nil {
				return err
			}
			defer e.Close()
			t, err := e.VerifyImage(args[0], caller(), offline)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], t.Digest)
			return nil
		},
	}
	c.Flags().BoolVar(&offline, "offline", false, "use cached metadata only (valid until it expires)")
	return c
}

// newTrustResolveCmd is engine.TrustResolveCommand: bulwark's run path resolves through it what
// the record of the last full TUF refresh cannot answer (engine.HelperTrust).
func newTrustResolveCmd() *cobra.Command {
	var offline bool
	c := &cobra.Command{
		Use:    engine.TrustResolveCommand + " TRUST-DIR REF",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := signing.Resolver{}.Resolve(args[0], args[1], offline)
			if err != nil {
				return &clibase.ExitError{Code: engine.HelperStatus(err), Err: err}
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(t)
		},
	}
	c.Flags().BoolVar(&offline, "offline", false, "use cached metadata only")
	return c
}
