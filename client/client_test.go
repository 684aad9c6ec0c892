package client

import (
	"errors"
	"net/http"
	"testing"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

func TestNew(t *testing.T) {
	if c, err := New("unix:///run/bulwark/bulwark.sock"); err != nil || c.socket != "/run/bulwark/bulwark.sock" {
		t.Errorf("unix: %v %v", c, err)
	}
	for _, bad := range []string{"/run/bulwark.sock", "tcp://127.0.0.1:2376", "unix://relative.sock", "ssh://host", ""} {
		if _, err := New(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	for status, class := range map[int]error{http.StatusNotFound: errdefs.ErrNotFound, http.StatusConflict: errdefs.ErrConflict,
		http.StatusBadRequest: errdefs.ErrInvalidArgument, http.StatusForbidden: errdefs.ErrRefusedByPolicy} {
		if err := error(&Error{Status: status}); !errors.Is(err, class) {
			t.Errorf("%d: not %v", status, class)
		}
	}
	if errdefs.Class(&Error{Status: http.StatusInternalServerError}) != nil {
		t.Error("500 has a class")
	}
}

func TestCreateRequest(t *testing.T) {
	t.Setenv("FROM_CALLER", "v")
	cr := CreateRequest(&engine.Request{Image: "busybox:1", Args: []string{"true"}, Env: []string{"A=1", "FROM_CALLER", "UNSET_HERE_XYZ"},
		Memory: 64 << 20, CPUs: 0.5, PidsLimit: 7, Tmpfs: []string{"/t:size=1m", "/u"}, Remove: true})
	if got := cr.Env; len(got) != 2 || got[0] != "A=1" || got[1] != "FROM_CALLER=v" {
		t.Errorf("env %v", got)
	}
	hc := cr.HostConfig
	if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || *hc.PidsLimit != 7 || !hc.AutoRemove || !hc.ReadonlyRootfs ||
		hc.Tmpfs["/t"] != "size=1m" || hc.Tmpfs["/u"] != "" || !cr.AttachStdout {
		t.Errorf("host config %+v", hc)
	}
}
