package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// unlinked are the packages (a trailing "/": the packages under a path) bulwark, started for every run, must not link: each
// costs every process its initialisation and its share of the binary, and each is served by
// another binary (bulwark-admin, bulwark-policy, bulwark-seccomp) when a command needs it.
var unlinked = []string{
	"github.com/open-policy-agent/opa/",             // bulwark-policy, bulwark-admin: policy, bench
	"github.com/theupdateframework/go-tuf/",         // bulwark-admin: trust, engine.HelperTrust
	"github.com/sigstore/",                          // the same
	"github.com/google/go-containerregistry/",       // bulwark-admin: image pull, push
	"github.com/klauspost/compress/zstd",            // bulwark-admin: engine.HelperZstd
	"bulwark.dev/bulwark/client",                    // bulwark-admin: --host (package client/op)
	"github.com/moby/moby/api/",                     // the same
	"github.com/containernetworking/cni/libcni",     // bulwark-admin: engine.HelperCNI
	"github.com/containernetworking/cni/pkg/invoke", // the same
	"go.opentelemetry.io/",                          // libcni's
	"golang.org/x/net/dns/dnsmessage",               // bulwark-admin: a network's resolver
	"bulwark.dev/bulwark/network/resolver",          // the same
	"bulwark.dev/bulwark/network/cni",               // the same as libcni
	"github.com/seccomp/libseccomp-golang",          // bulwark-seccomp: a seccomp cache miss
}

// TestLinks: bulwark's package graph holds none of unlinked.
func TestLinks(t *testing.T) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-tags", "netgo,osusergo", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, u := range unlinked {
			if pkg == u || strings.HasSuffix(u, "/") && strings.HasPrefix(pkg, u) {
				t.Errorf("bulwark links %s (%s)", pkg, u)
			}
		}
	}
}

// TestDigestCompilesNothing: the go-digest bulwark links is the copy that checks digests without
// regular expressions (third_party/go-digest), not upstream's, which compiles five at init.
func TestDigestCompilesNothing(t *testing.T) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", "github.com/opencontainers/go-digest").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "regexp" {
			t.Errorf("go-digest links regexp: go.mod no longer replaces it with third_party/go-digest")
		}
	}
}
