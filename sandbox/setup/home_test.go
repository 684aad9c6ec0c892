package setup

import (
	"slices"
	"strings"
	"testing"
)

func TestPasswdHome(t *testing.T) {
	const passwd = "# comment\n+nis\nroot:x:0:0:root:/root:/bin/sh\nbad:x:zero:0::/bad:\n" +
		"app:x:1000:1000:app:/home/app:/bin/sh\nempty:x:1001:1001:::/bin/sh\nshort:x:1002\napp2:x:1000:1000::/second:\n"
	for uid, want := range map[uint32]string{0: "/root", 1000: "/home/app", 1001: "/"} {
		if got, ok := passwdHome(strings.NewReader(passwd), uid); !ok || got != want {
			t.Errorf("uid %d: %q, %v; want %q", uid, got, ok, want)
		}
	}
	for _, uid := range []uint32{1002, 4242} {
		if got, ok := passwdHome(strings.NewReader(passwd), uid); ok {
			t.Errorf("uid %d: found %q in a malformed or missing entry", uid, got)
		}
	}
	env := []string{"PATH=/bin", "HOME=/given"}
	if got := withHome(env, 0); !slices.Equal(got, env) {
		t.Errorf("withHome replaced a given HOME: %v", got)
	}
}
