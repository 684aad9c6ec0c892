package cgroups

import specs "github.com/opencontainers/runtime-spec/specs-go"

type v1Manager struct {
	name  string
	paths map[string]string // controller -> leaf directory
}

func newV1(mounts map[string]string, name string) *v1Manager {
	return &v1Manager{name: name}
}

func (m *v1Manager) Create(res *specs.LinuxResources) error { return ErrUnsupported }
func (m *v1Manager) AddProc(pid int) error                  { return ErrUnsupported }
func (m *v1Manager) Freeze() error                          { return ErrUnsupported }
func (m *v1Manager) Thaw() error                            { return ErrUnsupported }
func (m *v1Manager) Pids() ([]int, error)                   { return nil, ErrUnsupported }
func (m *v1Manager) Stats() (*Stats, error)                 { return nil, ErrUnsupported }
func (m *v1Manager) OOMKilled() (bool, error)               { return false, ErrUnsupported }
func (m *v1Manager) Destroy() error                         { return nil }
func (m *v1Manager) Paths() map[string]string               { return m.paths }
