package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/opapolicy"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/image/registry"
	"bulwark.dev/bulwark/image/zstd"
	"bulwark.dev/bulwark/signing"
)

// newImageCmd holds bulwark's image commands that go over the network (package registry).
func newImageCmd() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage the content-addressed image store"}
	c.AddCommand(newImagePullCmd(), newImagePushCmd())
	return c
}

func openStore(cmd *cobra.Command) (*image.Store, error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return nil, err
	}
	return image.OpenWith(root, image.Options{Zstd: zstd.Decode})
}

// newZstdDecodeCmd is engine.ZstdDecodeCommand: the bulwark CLI decodes zstd layers through it
// (engine.HelperZstd).
func newZstdDecodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    engine.ZstdDecodeCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := zstd.Decode(cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer d.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), d); err != nil {
				return fmt.Errorf("zstd: %w", err)
			}
			return nil
		},
	}
}

func registryFlags(c *cobra.Command, o *registry.Options, passStdin *bool) {
	c.Flags().BoolVar(&o.PlainHTTP, "plain-http", false, "allow plain HTTP to a non-loopback registry")
	c.Flags().StringVar(&o.CAFile, "ca-file", "", "PEM CA bundle trusted for the registry's TLS certificate")
	c.Flags().StringVar(&o.Username, "username", "", "registry user (basic auth, also for bearer tokens)")
	c.Flags().BoolVar(passStdin, "password-stdin", false, "read the registry password from stdin")
}

// prepareRegistry reads the password and, on a terminal, attaches a progress bar.
func prepareRegistry(cmd *cobra.Command, o *registry.Options, passStdin bool, what string) (finish func(), err error) {
	o.Context = cmd.Context()
	if passStdin {
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
		if err != nil {
			return nil, err
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return func() {}, nil
	}
	bar := progressbar.DefaultBytes(-1, what)
	o.Progress = func(done, total int64) {
		if total > 0 {
			bar.ChangeMax64(total)
		}
		bar.Set64(done)
	}
	return func() { bar.Finish() }, nil
}

// resolveSigned resolves ref through TUF on the state and run roots of cmd's flags, as a run
// does.
func resolveSigned(cmd *cobra.Command, ref string) (digestRef string, err error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return "", err
	}
	cfg := engine.Config{Root: root, Policies: opapolicy.Policies{}, Trust: signing.Resolver{}, Zstd: zstd.Decode}
	if run, _ := cmd.Flags().GetString("run-root"); run != "" {
		if cfg.RunRoot, err = filepath.Abs(run); err != nil {
			return "", err
		}
	}
	// A resolution decides nothing: no policy is loaded.
	e, err := engine.Open(cfg)
	if err != nil {
		return "", err
	}
	t, err := e.ResolveSigned(ref, caller(), false)
	e.Close()
	if err != nil {
		return "", err
	}
	r, err := image.ParseRef(ref)
	if err != nil {
		return "", err
	}
	return r.Name + "@" + t.Digest.String(), nil
}

func newImagePullCmd() *cobra.Command {
	var o registry.Options
	var passStdin bool
	var tag string
	var verify bool
	c := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from an OCI distribution registry, verifying every blob",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			from, local := args[0], tag
			if verify {
				// Pull by the signed digest, so the registry cannot serve anything else for the tag.
				if from, err = resolveSigned(cmd, args[0]); err != nil {
					return err
				}
				if local == "" {
					local = args[0]
				}
			}
			finish, err := prepareRegistry(cmd, &o, passStdin, "pull")
			if err != nil {
				return err
			}
			o.Note = func(n string) { fmt.Fprintln(cmd.ErrOrStderr(), "bulwark: note:", n) }
			desc, err := registry.Pull(s, from, local, o)
			finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], desc.Digest)
			return nil
		},
	}
	registryFlags(c, &o, &passStdin)
	c.Flags().StringVar(&tag, "tag", "", "local NAME:TAG (default: REF)")
	c.Flags().BoolVar(&verify, "verify", false, "resolve REF through TUF first and pull the signed digest")
	return c
}

func newImagePushCmd() *cobra.Command {
	var o registry.Options
	var passStdin bool
	c := &cobra.Command{
		Use:   "push LOCAL [REMOTE]",
		Short: "Push a local image to a registry (REMOTE defaults to LOCAL)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			remote := args[0]
			if len(args) == 2 {
				remote = args[1]
			}
			finish, err := prepareRegistry(cmd, &o, passStdin, "push")
			if err != nil {
				return err
			}
			desc, err := registry.Push(s, args[0], remote, o)
			finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", remote, desc.Digest)
			return nil
		},
	}
	registryFlags(c, &o, &passStdin)
	return c
}
