// Package lazycmd makes a cobra command tree only as far as a command line needs: bulwark's and
// bulwark-runc's processes each run one subcommand, and making every other one with its flags
// was part of every start.
package lazycmd

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Sub is a subcommand of the root made only when it may run: its name and aliases, and what
// makes it (with its flags and its own subcommands).
type Sub struct {
	Names []string
	Make  func() *cobra.Command
}

// AddSubs adds subs to root. When args (the command line after the program's name) names one of
// them, only that one is made: building bulwark's whole tree — some fifty commands and their
// flags — was about 0.15 ms of every process, every `bulwark run` and the engine's own hidden
// commands included. Without a name, with one that is none of subs (help, completion, a typo
// cobra suggests a command for) or with a flag root does not know before it, the whole tree is
// made, as it always was.
func AddSubs(root *cobra.Command, args []string, subs []Sub) {
	if name := subName(root, args); name != "" {
		for _, s := range subs {
			if slices.Contains(s.Names, name) {
				root.AddCommand(s.Make())
				return
			}
		}
	}
	for _, s := range subs {
		root.AddCommand(s.Make())
	}
}

// subName is the first of args that is neither one of root's persistent flags nor such a flag's
// value: the subcommand cobra will look for. It is "" when a "--", a flag root does not define
// or no argument comes first.
func subName(root *cobra.Command, args []string) string {
	flags := root.PersistentFlags()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a
		}
		if a == "--" {
			return ""
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--"):
			f = flags.Lookup(name)
		case len(name) == 1:
			f = flags.ShorthandLookup(name)
		}
		if f == nil {
			return ""
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++ // the flag's value is the next argument
		}
	}
	return ""
}
