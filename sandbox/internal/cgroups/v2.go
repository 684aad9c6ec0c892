package cgroups

import specs "github.com/opencontainers/runtime-spec/specs-go"

type v2Manager struct {
	name  string
	paths map[string]string // controller -> leaf directory
}

func newV2(root string, name string) *v2Manager {
	return &v2Manager{name: name}
}

func (m *v2Manager) Create(res *specs.LinuxResources) error { return ErrUnsupported }
func (m *v2Manager) AddProc(pid int) error                  { return ErrUnsupported }
func (m *v2Manager) Freeze() error                          { return ErrUnsupported }
func (m *v2Manager) Thaw() error                            { return ErrUnsupported }
func (m *v2Manager) Pids() ([]int, error)                   { return nil, ErrUnsupported }
func (m *v2Manager) Stats() (*Stats, error)                 { return nil, ErrUnsupported }
func (m *v2Manager) OOMKilled() (bool, error)               { return false, ErrUnsupported }
func (m *v2Manager) Destroy() error                         { return nil }
func (m *v2Manager) Paths() map[string]string               { return m.paths }
