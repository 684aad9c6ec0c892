package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// ReexecPrivateMountNS runs this test binary again, with its arguments, under `unshare --mount
// --propagation private` and with marker=1 in its environment, and returns its exit status: a
// TestMain calls it when marker is unset, so that mounts the tests make stay in a namespace that
// dies with the re-executed binary.
func ReexecPrivateMountNS(marker string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), marker+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "testenv: unshare:", err)
		return 1
	}
	return 0
}
