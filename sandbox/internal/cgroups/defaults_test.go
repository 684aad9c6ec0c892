package cgroups

import (
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWithDefaultsNil(t *testing.T) {
	res, changes := WithDefaults(nil)
	want := []Change{
		{"linux.resources.memory.limit", "unset", "536870912"},
		{"linux.resources.memory.swap", "unset", "536870912"},
		{"linux.resources.pids.limit", "unset", "1024"},
	}
	if !slices.Equal(changes, want) {
		t.Errorf("changes = %v, want %v", changes, want)
	}
	if *res.Memory.Limit != DefaultMemoryLimit || *res.Memory.Swap != DefaultMemoryLimit || *res.Pids.Limit != DefaultPidsLimit {
		t.Errorf("res = %+v", res)
	}
	if !reflect.DeepEqual(res.Devices, floorDeviceSpec()) {
		t.Errorf("devices = %+v", res.Devices)
	}
}

func TestWithDefaultsRaisesAndKeeps(t *testing.T) {
	in := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 30), Swap: ptr[int64](-1)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](-1)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](100)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rw"},     // within the floor
			{Allow: true, Type: "c", Major: ptr[int64](10), Minor: ptr[int64](200), Access: "rwm"}, // /dev/net/tun
			{Allow: true, Type: "b", Access: "m"},
		},
	}
	res, changes := WithDefaults(in)
	want := []Change{
		{"linux.resources.memory.swap", "-1", "1073741824"},
		{"linux.resources.pids.limit", "-1", "1024"},
		{"linux.resources.devices", "allow c 10:200 rwm, b *:* m", "deny all but the minimal /dev set"},
	}
	if !slices.Equal(changes, want) {
		t.Errorf("changes = %v\nwant %v", changes, want)
	}
	if *res.Memory.Limit != 1<<30 || *res.CPU.Shares != 100 {
		t.Errorf("kept fields changed: %+v", res)
	}
	if *in.Memory.Swap != -1 || *in.Pids.Limit != -1 {
		t.Error("WithDefaults modified its input")
	}
	rules, err := effectiveDevices(res.Devices)
	if err != nil || !slices.Equal(rules, floorDevices) {
		t.Errorf("effective devices = %v, %v; want the floor set", rules, err)
	}
}

func TestEffectiveDevices(t *testing.T) {
	deny := func(typ string, maj, min int64, acc string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Type: typ, Access: acc}
		if maj >= 0 {
			d.Major = &maj
		}
		if min >= 0 {
			d.Minor = &min
		}
		return d
	}
	rules, err := effectiveDevices([]specs.LinuxDeviceCgroup{deny("c", 1, 9, "w"), deny("c", 5, -1, "rwm")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.String())
	}
	want := []string{"c 1:3 rw", "c 1:5 rw", "c 1:7 rw", "c 1:8 rw", "c 1:9 r", "c 136:* rw"}
	if !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	if _, err := effectiveDevices([]specs.LinuxDeviceCgroup{deny("c", 136, 3, "rw")}); err == nil {
		t.Error("denying one pty of the 136:* floor entry was accepted")
	}
	if _, err := effectiveDevices([]specs.LinuxDeviceCgroup{deny("x", -1, -1, "rw")}); err == nil {
		t.Error("device type x was accepted")
	}
}
