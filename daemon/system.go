package daemon

import (
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// Version is bulwarkd's version, reported by /version.
var Version = "0.1.0-dev"

func (s *Server) ping(w http.ResponseWriter, r *http.Request, c *call) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("OSType", "linux")
	h.Set("Docker-Experimental", "false")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte("OK"))
	}
	return nil
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform: system.PlatformInfo{Name: "Bulwark"}, Version: Version, APIVersion: APIVersion,
		MinAPIVersion: MinAPIVersion, Os: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(),
		KernelVersion: kernel(),
		Components: []system.ComponentVersion{{Name: "Engine", Version: Version, Details: map[string]string{
			"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": runtime.GOOS, "Arch": runtime.GOARCH,
		}}},
	})
	return nil
}

// info counts the caller's own containers only.
func (s *Server) info(w http.ResponseWriter, r *http.Request, c *call) error {
	inf := system.Info{
		ID: "bulwarkd", Driver: "bulwark-overlay", LoggingDriver: "json-file", CgroupDriver: "cgroupfs",
		KernelVersion: kernel(), OperatingSystem: osName(), OSType: "linux", Architecture: runtime.GOARCH,
		NCPU: runtime.NumCPU(), DockerRootDir: s.eng.Root(), ServerVersion: Version, Name: hostname(),
		MemoryLimit: true, PidsLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true,
		SystemTime: time.Now().Format(time.RFC3339Nano), DefaultRuntime: "bulwark",
		Runtimes:        map[string]system.RuntimeWithStatus{"bulwark": {}},
		SecurityOptions: []string{"name=seccomp,profile=builtin", "name=userns", "name=no-new-privileges", "name=landlock"},
		Labels:          []string{"dev.bulwark.tenant=" + c.who.Tenant},
	}
	var mem unix.Sysinfo_t
	if unix.Sysinfo(&mem) == nil {
		inf.MemTotal = int64(mem.Totalram) * int64(mem.Unit)
	}
	for _, rec := range s.recs.list(c.who.Tenant) {
		inf.Containers++
		switch s.stateOf(rec, engineCaller(c, rec)).status {
		case container.StateRunning:
			inf.ContainersRunning++
		case container.StatePaused:
			inf.ContainersPaused++
		default:
			inf.ContainersStopped++
		}
	}
	if imgs, err := s.eng.Store().List(); err == nil {
		inf.Images = len(imgs)
	}
	writeJSON(w, http.StatusOK, inf)
	return nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "linux"
}
