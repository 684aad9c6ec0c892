package lazycmd

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// TestAddSubs: a command line that names a subcommand after the root's own flags (with their
// values, as separate arguments or after "=") makes that one alone; anything else — no name,
// help, a name that is none of them, a flag the root does not define, "--" — makes the whole
// tree, for cobra to find, help or refuse as it always did.
func TestAddSubs(t *testing.T) {
	made := func(args ...string) []string {
		root := &cobra.Command{Use: "bulwark"}
		root.PersistentFlags().String("root", "", "")
		root.PersistentFlags().StringP("host", "H", "", "")
		root.PersistentFlags().Bool("debug", false, "")
		var names []string
		sub := func(n string) Sub {
			return Sub{Names: []string{n}, Make: func() *cobra.Command {
				names = append(names, n)
				return &cobra.Command{Use: n}
			}}
		}
		AddSubs(root, args, []Sub{sub("run"), sub("ps"), sub("image")})
		return names
	}
	all := []string{"run", "ps", "image"}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--rm", "img", "ps"}, []string{"run"}},
		{[]string{"--root", "/x", "ps"}, []string{"ps"}},
		{[]string{"--root=/x", "--debug", "image", "ls"}, []string{"image"}},
		{[]string{"--host", "run", "ps"}, []string{"ps"}},
		{[]string{"-H", "run", "image"}, []string{"image"}},
		{nil, all},
		{[]string{"help", "run"}, all},
		{[]string{"rn"}, all},
		{[]string{"--nope", "run"}, all},
		{[]string{"-xyz", "run"}, all},
		{[]string{"--", "run"}, all},
		{[]string{"--root"}, all},
	} {
		if got := made(c.args...); !slices.Equal(got, c.want) {
			t.Errorf("%q: made %v, want %v", c.args, got, c.want)
		}
	}
}
