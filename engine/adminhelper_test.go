package engine

import (
	"bytes"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"bulwark.dev/bulwark/errdefs"
)

// TestAdminFailureKeepsClass: a helper of bulwark-admin (trust resolution, CNI) that fails with
// an error of a class exits with the status that names it (HelperStatus), and runAdmin's caller
// gets an error of that class with the helper's message: a helper's "no such network" was an
// engine failure to the CLI's exit status and the daemon's HTTP status. A failure of no class,
// and an exit status bulwark-admin has for itself (1: a bad argument), name no class.
func TestAdminFailureKeepsClass(t *testing.T) {
	fail := func(status int, stderr string) error {
		cmd := exec.Command("/bin/sh", "-c", `printf '%s' "$1" >&2; exit "$2"`, "sh", stderr, strconv.Itoa(status))
		var buf bytes.Buffer
		cmd.Stderr = &buf
		err := cmd.Run()
		if err == nil {
			t.Fatalf("exit %d: no error", status)
		}
		return adminFailure("cni del", "/usr/bin/bulwark-admin", err, buf.String())
	}
	seen := map[int]bool{}
	for _, class := range helperClasses {
		status := HelperStatus(errdefs.Errorf(class, "wrapped: %w", errors.New("cause")))
		if seen[status] || status == 1 || status == 2 || status >= 125 {
			t.Errorf("class %v: status %d, taken or one of bulwark-admin's own", class, status)
		}
		seen[status] = true
		if err := fail(status, "bulwark: no such network\n"); errdefs.Class(err) != class || err.Error() != "no such network" {
			t.Errorf("class %v: %q of class %v, want %q of that class", class, err, errdefs.Class(err), "no such network")
		}
		if err := fail(status, ""); errdefs.Class(err) != class || !strings.HasPrefix(err.Error(), "cni del by /usr/bin/bulwark-admin: exit status") {
			t.Errorf("class %v, no message: %q of class %v", class, err, errdefs.Class(err))
		}
	}
	for _, c := range []struct {
		status int
		msg    string
	}{{HelperStatus(errors.New("plugin failed")), "plugin failed"}, {1, "unknown flag: --x"}} {
		if err := fail(c.status, "bulwark: "+c.msg+"\n"); errdefs.Class(err) != nil || err.Error() != c.msg {
			t.Errorf("exit %d: %q of class %v, want %q of none", c.status, err, errdefs.Class(err), c.msg)
		}
	}
}
