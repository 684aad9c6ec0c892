package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/internal/atomicfile"
)

func openStore(cmd *cobra.Command) (*image.Store, error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return nil, err
	}
	return image.Open(root)
}

func newImageCmd() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage the content-addressed image store"}
	c.AddCommand(newImageImportCmd(), newImageLsCmd(), newImageInspectCmd(), newImageRmCmd(),
		newImageExportCmd(), newImageUnpackCmd(), newImagePruneCmd(), newImagePullCmd(), newImagePushCmd())
	return c
}

func newImageImportCmd() *cobra.Command {
	var tag string
	c := &cobra.Command{
		Use:   "import FILE|DIR --tag NAME:TAG",
		Short: "Import an OCI layout (directory or tar), a docker save archive, or a rootfs tar",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			desc, err := s.ImportNoted(args[0], tag, func(n string) { fmt.Fprintln(cmd.ErrOrStderr(), "bulwark: note:", n) })
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", tag, desc.Digest)
			return nil
		},
	}
	c.Flags().StringVar(&tag, "tag", "", "NAME:TAG for the imported image (required)")
	c.MarkFlagRequired("tag")
	return c
}

func newImageLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List tagged images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REFERENCE\tDIGEST\tSIZE")
			for _, im := range imgs {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", im.Ref, im.Descriptor.Digest, im.Descriptor.Size)
			}
			return tw.Flush()
		},
	}
}

func newImageInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect REF",
		Short: "Print an image's descriptor, manifest and configuration (all verified) as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			desc, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			m, err := s.Manifest(desc)
			if err != nil {
				return err
			}
			cfg, err := s.Config(m)
			if err != nil {
				return err
			}
			return clibase.PrintJSON(cmd.OutOrStdout(), map[string]any{"descriptor": desc, "manifest": m, "config": cfg})
		},
	}
}

func newImageRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF...",
		Short: "Untag images and delete blobs no other tag uses",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			for _, ref := range args {
				if err := s.Remove(ref); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newImageExportCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export REF [-o FILE]",
		Short: "Write an image as an OCI layout tar (to stdout by default)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return s.Export(args[0], cmd.OutOrStdout())
			}
			return exportToFile(s, args[0], out)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output file")
	return c
}

// exportToFile writes through a temporary file so a failed export leaves no partial archive.
func exportToFile(s *image.Store, ref, out string) error {
	return atomicfile.WriteFrom(out, func(w io.Writer) error { return s.Export(ref, w) }, atomicfile.Options{})
}

func newImagePruneCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete unpacked layers no tagged image and no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd, nil)
			if err != nil {
				return err
			}
			defer e.Close()
			removed, err := e.PruneLayers()
			for _, d := range removed {
				fmt.Fprintln(cmd.OutOrStdout(), "removed layer", d)
			}
			return err
		},
	}
}

// unpackLimits are the flags that set the limits against image bombs for the layers a command
// unpacks (zero: the store's defaults).
type unpackLimits struct {
	maxImageSize string
	maxRatio     int64
}

func (u *unpackLimits) add(c *cobra.Command) {
	c.Flags().StringVar(&u.maxImageSize, "max-image-size", "", fmt.Sprintf("limit on an image's unpacked layers together (e.g. 64g; default %dg)", image.DefaultMaxImageBytes>>30))
	c.Flags().Int64Var(&u.maxRatio, "max-layer-ratio", 0, fmt.Sprintf("limit on a layer's uncompressed size as a multiple of its blob's (default %d)", image.DefaultMaxRatio))
}

func (u *unpackLimits) options() (image.UnpackOptions, error) {
	var o image.UnpackOptions
	if u.maxImageSize != "" {
		n, err := parseBytes(u.maxImageSize)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("--max-image-size %q: want a positive size", u.maxImageSize)
		}
		o.MaxImageBytes = n
	}
	if u.maxRatio < 0 {
		return o, fmt.Errorf("--max-layer-ratio %d: want a positive ratio", u.maxRatio)
	}
	o.MaxRatio = u.maxRatio
	return o, nil
}

func newImageUnpackCmd() *cobra.Command {
	var limits unpackLimits
	c := &cobra.Command{
		Use:   "unpack REF",
		Short: "Verify and unpack an image's layers; print the overlay mount options",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd)
			if err != nil {
				return err
			}
			desc, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			lim, err := limits.options()
			if err != nil {
				return err
			}
			layers, err := s.Unpack(desc, lim)
			if err != nil {
				return err
			}
			for _, l := range layers {
				if rep := l.Report; rep != nil && (len(rep.StrippedSetuid) > 0 || len(rep.DroppedXattrs) > 0) {
					fmt.Fprintf(cmd.ErrOrStderr(), "layer %s: setuid/setgid stripped from %v; xattrs dropped: %v\n",
						l.DiffID, rep.StrippedSetuid, rep.DroppedXattrs)
				}
			}
			diffIDs := make([]digest.Digest, len(layers))
			for i, l := range layers {
				diffIDs[i] = l.DiffID
			}
			r, err := s.LayerRootfs(diffIDs)
			if err != nil {
				return err
			}
			opts, err := r.MountOptions(false)
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), opts+"\n")
			return err
		},
	}
	limits.add(c)
	return c
}

func registryFlags(c *cobra.Command, o *image.RegistryOptions, passStdin *bool) {
	c.Flags().BoolVar(&o.PlainHTTP, "plain-http", false, "allow plain HTTP to a non-loopback registry")
	c.Flags().StringVar(&o.CAFile, "ca-file", "", "PEM CA bundle trusted for the registry's TLS certificate")
	c.Flags().StringVar(&o.Username, "username", "", "registry user (basic auth, also for bearer tokens)")
	c.Flags().BoolVar(passStdin, "password-stdin", false, "read the registry password from stdin")
}

// prepare reads the password and, on a terminal, attaches a progress bar.
func prepareRegistry(cmd *cobra.Command, o *image.RegistryOptions, passStdin bool, what string) (finish func(), err error) {
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

func newImagePullCmd() *cobra.Command {
	var o image.RegistryOptions
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
				e, err := openEngine(cmd, nil)
				if err != nil {
					return err
				}
				t, err := e.ResolveSigned(args[0], caller(), false)
				e.Close()
				if err != nil {
					return err
				}
				r, err := image.ParseRef(args[0])
				if err != nil {
					return err
				}
				from = r.Name + "@" + t.Digest.String()
				if local == "" {
					local = args[0]
				}
			}
			finish, err := prepareRegistry(cmd, &o, passStdin, "pull")
			if err != nil {
				return err
			}
			o.Note = func(n string) { fmt.Fprintln(cmd.ErrOrStderr(), "bulwark: note:", n) }
			desc, err := s.Pull(from, local, o)
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
	var o image.RegistryOptions
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
			desc, err := s.Push(args[0], remote, o)
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
