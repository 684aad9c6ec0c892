package nsenter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func report(pid, step, errno int32) *bytes.Buffer {
	var b bytes.Buffer
	binary.Write(&b, binary.NativeEndian, struct{ Pid, Step, Errno int32 }{pid, step, errno})
	return &b
}

func TestReadReport(t *testing.T) {
	if pid, err := ReadReport(report(4242, 0, 0)); err != nil || pid != 4242 {
		t.Fatalf("pid %d, %v", pid, err)
	}
	cases := map[int32]string{21: "setns user", 26: "setns mnt", 13: "open namespace uts", 20: "setns net", 31: "fork", 40: "setns user (the pod's)"}
	for step, want := range cases {
		_, err := ReadReport(report(0, step, 1))
		var ne *Error
		if !errors.As(err, &ne) || ne.Step != want || ne.Errno != 1 || !strings.Contains(err.Error(), want) {
			t.Errorf("step %d: %v, want %q", step, err, want)
		}
	}
	if _, err := ReadReport(bytes.NewBuffer(nil)); err == nil {
		t.Error("empty report accepted")
	}
}

// TestLeaksClosedWithoutConstructor: a process no constructor acted in (neither variable set) has
// not had its descriptors closed, so the setup child's own check runs.
func TestLeaksClosedWithoutConstructor(t *testing.T) {
	if LeaksClosed() {
		t.Error("LeaksClosed() in a process no constructor acted in")
	}
}
