package runcgate

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestInspectHooks(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	content := []byte("#!/bin/sh\nexit 0\n")
	if err := os.WriteFile(prog, content, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(prog, link); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	hs, err := inspectHooks(&specs.Hooks{Prestart: []specs.Hook{{Path: link}}, Poststop: []specs.Hook{{Path: prog, Args: []string{"x"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	if len(hs) != 2 || hs[0].Phase != PhasePrestart || hs[1].Phase != PhasePoststop {
		t.Fatalf("hooks %+v", hs)
	}
	// A symlinked path is judged by the file it opens.
	if hs[0].Resolved != prog || hs[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("resolved %s sha256 %s", hs[0].Resolved, hs[0].SHA256)
	}
	if ph := hs.policyHooks(); ph[0].Args == nil || ph[1].Args[0] != "x" {
		t.Errorf("policy hooks %+v", ph)
	}

	zero := 0
	for name, tc := range map[string]struct {
		hooks specs.Hooks
		want  string
	}{
		"createContainer": {specs.Hooks{CreateContainer: []specs.Hook{{Path: prog}}}, "createContainer and startContainer hooks are refused"},
		"startContainer":  {specs.Hooks{StartContainer: []specs.Hook{{Path: prog}}}, "createContainer and startContainer hooks are refused"},
		"relative":        {specs.Hooks{Poststart: []specs.Hook{{Path: "prog"}}}, "hooks.poststart[0]: hook path \"prog\" is not absolute"},
		"not executable":  {specs.Hooks{Prestart: []specs.Hook{{Path: prog}, {Path: plain}}}, "hooks.prestart[1]: hook " + plain + ": " + plain + " is not an executable regular file"},
		"directory":       {specs.Hooks{Prestart: []specs.Hook{{Path: dir}}}, "is not an executable regular file"},
		"missing":         {specs.Hooks{CreateRuntime: []specs.Hook{{Path: dir + "/none"}}}, "open hook"},
		"zero timeout":    {specs.Hooks{Prestart: []specs.Hook{{Path: prog, Timeout: &zero}}}, "must be greater than zero"},
	} {
		if _, err := inspectHooks(&tc.hooks); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestHookRecordReopen(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hs, err := inspectHooks(&specs.Hooks{Poststop: []specs.Hook{{Path: prog}}})
	if err != nil {
		t.Fatal(err)
	}
	hs.Close()
	rec := filepath.Join(dir, "rec", "c1.json")
	if err := SaveHooks(rec, hs); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHooks(rec)
	if err != nil || len(got) != 1 {
		t.Fatalf("load: %v %+v", err, got)
	}
	if err := got[0].reopen(); err != nil {
		t.Errorf("unchanged hook: %v", err)
	}
	got.Close()
	// Replaced since the decision: refused.
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nrm -rf /\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := got[0].reopen(); err == nil || !strings.Contains(err.Error(), "as decided at create: refused") {
		t.Errorf("replaced hook: %v", err)
	}
	if err := SaveHooks(rec, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadHooks(rec); err != nil || got != nil {
		t.Errorf("after removal: %v %+v", err, got)
	}
}
