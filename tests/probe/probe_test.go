package main

import (
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/report"
)

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/t\011x\134`: "/t\tx\\"} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// The read-only sections run anywhere; here they must describe this very process.
func TestReadOnlySectionsOnHost(t *testing.T) {
	m, err := mounts()
	if err != nil || len(m) == 0 {
		t.Fatalf("mounts: %v %v", m, err)
	}
	if root := (&report.Report{Mounts: m}).MountAt("/"); root == nil || root.FSType == "" {
		t.Errorf("no mount covers /: %+v", root)
	}
	f, err := fds()
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range []string{"0", "1", "2"} {
		if _, ok := f[fd]; !ok {
			t.Errorf("fd %s not listed: %v", fd, f)
		}
	}
	ns, err := namespaces()
	if err != nil || !strings.HasPrefix(ns["mnt"], "mnt:[") {
		t.Errorf("namespaces %v %v", ns, err)
	}
	if c := cwd(); !c.InRoot {
		t.Errorf("cwd %+v not in root", c)
	}
	if r := rlimits(); r["nofile"].Max == 0 {
		t.Errorf("rlimits %v", r)
	}
}

// Intrusive sections refuse to run outside a user namespace.
func TestIntrusiveSectionsRefuseOnHost(t *testing.T) {
	if !inInitialUserNS() {
		t.Skip("running inside a user namespace")
	}
	if f := forbidden(); len(f) != 1 || f["refused"] == "" {
		t.Errorf("forbidden ran on the host: %v", f)
	}
	if s := shocker(); s.Attempts != 0 {
		t.Errorf("shocker ran on the host: %+v", s)
	}
}
