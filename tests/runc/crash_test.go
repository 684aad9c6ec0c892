package runc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestKillDuringCreate: `bulwark-runc create` SIGKILLed at points spread over its run leaves a
// container that `list` shows — never hidden — as stopped (or created, when create finished
// first), whose `state` says so, and that a plain `delete` removes completely.
func TestKillDuringCreate(t *testing.T) {
	c, leaks := newCLI(t)
	bundle := testenv.Bundle(t, sleeper())
	leaks.Dir(bundle)
	left := 0
	for i := range 16 {
		id := leaks.Track(fmt.Sprintf("%s-%d", testenv.UniqueID(t), i))
		cmd := c.command("create", "--bundle", bundle, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * 12 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := os.Stat(filepath.Join(c.root, "containers", id)); os.IsNotExist(err) {
			continue // killed before the state directory was made
		}
		left++
		list := c.ok("list")
		line := ""
		for _, l := range strings.Split(list, "\n") {
			if strings.HasPrefix(l, id+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("kill after %d ms: %s is not listed:\n%s", i*12, id, list)
		}
		// A setup child of the killed create may outlive it by a moment (holding the state
		// directory's lock, so the container still reads as creating): it must not be for long.
		st := c.state(id)
		for deadline := time.Now().Add(5 * time.Second); st.Status == "creating" && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			st = c.state(id)
		}
		if st.Status != "stopped" && st.Status != "created" {
			t.Errorf("kill after %d ms: %s is %s, want stopped (or created)", i*12, id, st.Status)
		}
		if r := c.run("delete", id); r.code != 0 {
			t.Errorf("kill after %d ms: plain delete of %s: exit %d %s", i*12, id, r.code, r.stderr)
			c.run("delete", "--force", id)
		}
	}
	t.Logf("%d of 16 killed creates left a container behind", left)
}
