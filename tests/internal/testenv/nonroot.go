package testenv

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Nobody is the uid and gid a non-root caller runs as.
const Nobody = 65534

// AsNobody makes cmd run as uid and gid Nobody, with no supplementary groups, from /.
func AsNobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
	cmd.Dir = "/"
	return cmd
}

// OpenDir returns a fresh directory under the system's temp dir with mode (t.TempDir's parents
// are private), removed at cleanup: for what a non-root caller must reach or could write.
func OpenDir(t testing.TB, mode os.FileMode) string {
	t.Helper()
	d, err := os.MkdirTemp("", "bulwark-open-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

// ExecutableCopy copies bin into a directory anyone can traverse and returns the copy, which
// Nobody can run.
func ExecutableCopy(t testing.TB, bin string) string {
	t.Helper()
	dst := filepath.Join(OpenDir(t, 0o755), filepath.Base(bin))
	in, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
