package daemon

import (
	"errors"
	"fmt"
	"testing"

	"bulwark.dev/bulwark/daemon/bulwarkapi"
	"bulwark.dev/bulwark/engine/truststate"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/signing"
)

func TestTrustResponseTenantView(t *testing.T) {
	st := &truststate.TrustStatus{Verified: &signing.TrustedView{
		Roles: []signing.TrustedRole{{Role: "root", Version: 1}, {Role: "targets", Version: 2},
			{Role: "alice", Version: 1, Delegated: true}, {Role: "bob", Version: 3, Delegated: true}},
		Targets: []signing.TrustedTarget{{Name: "busybox:1", Digest: "sha256:a", Role: "targets"},
			{Name: "busybox@sha256:a", Digest: "sha256:a", Role: "targets"},
			{Name: "alice/app:2", Digest: "sha256:b", Role: "alice"}, {Name: "bob/app:1", Digest: "sha256:c", Role: "bob"},
			{Name: "reg.example:5000/x", Digest: "sha256:d", Role: "targets"}},
	}}
	view := func(tenant string, operator bool) (roles, tags []string) {
		resp := trustResponse(st, tenant, operator)
		for _, r := range resp.Roles {
			roles = append(roles, r.Role)
		}
		for _, rp := range resp.Repositories {
			for _, tg := range rp.Tags {
				tags = append(tags, rp.Name+":"+tg.Tag+"="+tg.Role)
			}
		}
		return roles, tags
	}
	roles, tags := view("alice", false)
	if fmt.Sprint(roles) != "[root targets alice]" || fmt.Sprint(tags) != "[alice/app:2=alice busybox:1=targets reg.example:5000/x:latest=targets]" {
		t.Errorf("alice sees roles %v, tags %v", roles, tags)
	}
	roles, tags = view("default", true)
	if len(roles) != 4 || len(tags) != 4 {
		t.Errorf("the operator sees roles %v, tags %v", roles, tags)
	}
}

func TestDecideResponse(t *testing.T) {
	denied := &policy.DeniedError{Decision: policy.Decision{Revision: "r", Reasons: []policy.Reason{{Code: "CAP_FORBIDDEN", Message: "no"}}}}
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("prepare: %w", denied), "CAP_FORBIDDEN"},
		{errdefs.Errorf(errdefs.ErrUntrusted, "image x: not signed"), bulwarkapi.CodeImageUntrusted},
		{errdefs.Errorf(errdefs.ErrRefusedByFloor, "privileged"), bulwarkapi.CodeFloorRefused},
	} {
		resp, err := decideResponse(nil, tc.err)
		if err != nil || resp.Allow || len(resp.Reasons) != 1 || resp.Reasons[0].Code != tc.code {
			t.Errorf("%v: %+v %v", tc.err, resp, err)
		}
	}
	// Anything else is the request's error, not a decision.
	bad := errdefs.Errorf(errdefs.ErrInvalidArgument, "bad name")
	if _, err := decideResponse(nil, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("invalid request: %v", err)
	}
}
