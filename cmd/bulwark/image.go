package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/cmd/internal/clibase"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/image"
	"bulwark.dev/bulwark/internal/atomicfile"
)

func openStore(cmd *cobra.Command) (*image.Store, error) {
	root, err := cmd.Flags().GetString("root")
	if err != nil {
		return nil, err
	}
	return image.OpenWith(root, image.Options{Zstd: engine.HelperZstd})
}

func newImageCmd() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage the content-addressed image store"}
	c.AddCommand(newImageImportCmd(), newImageLsCmd(), newImageInspectCmd(), newImageRmCmd(),
		newImageExportCmd(), newImageUnpackCmd(), newImagePruneCmd(),
		// Those that go over the network (go-containerregistry) are bulwark-admin's (delegate.go).
		newDelegatedCmd("pull", "Pull an image from an OCI distribution registry, verifying every blob"),
		newDelegatedCmd("push", "Push a local image to a registry (REMOTE defaults to LOCAL)"))
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
