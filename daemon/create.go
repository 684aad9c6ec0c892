package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"

	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/engine"
)

// A create request is mapped field by field onto an engine request. A field bulwarkd does not
// map is refused when it asks for anything (a non-zero value), never ignored: Docker clients
// send every field, mostly zero, so "not asked" is the zero value.

// configFields are the Config (top-level) fields mapped or harmless; the others must be zero.
var configFields = []string{
	"Hostname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
	"StdinOnce", "Env", "Cmd", "Image", "WorkingDir", "Entrypoint", "Labels", "StopTimeout",
	"StopSignal", "NetworkDisabled", "ExposedPorts", "ArgsEscaped", "HostConfig",
	"NetworkingConfig", "Volumes",
}

// hostConfigFields are the HostConfig fields mapped or checked below.
var hostConfigFields = []string{
	"Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy",
	"AutoRemove", "ConsoleSize", "CapAdd", "CapDrop", "CgroupnsMode", "IpcMode", "PidMode",
	"UTSMode", "UsernsMode", "Privileged", "ReadonlyRootfs", "SecurityOpt", "Tmpfs", "Memory",
	"NanoCpus", "PidsLimit", "Ulimits", "MemorySwap", "MemorySwappiness", "Runtime", "Isolation",
	"Mounts", "PublishAllPorts",
}

// unasked lists the keys of doc outside known whose values ask for something.
func unasked(doc map[string]any, known []string) []string {
	var out []string
	for k, v := range doc {
		if slices.Contains(known, k) || isZero(v) {
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, e := range x {
			if !isZero(e) {
				return false
			}
		}
		return true
	}
	return false
}

// mapCreate turns a Docker create request into the engine request it stands for; warnings are
// what the client is told (Docker prints them).
func mapCreate(raw []byte, req *container.CreateRequest, who config.Principal, id string) (*engine.Request, []string, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, statusError(http.StatusBadRequest, "malformed request body: %v", err)
	}
	bad := unasked(doc, configFields)
	hostDoc, _ := doc["HostConfig"].(map[string]any)
	for _, k := range unasked(hostDoc, hostConfigFields) {
		bad = append(bad, "HostConfig."+k)
	}
	if len(bad) > 0 {
		return nil, nil, statusError(http.StatusBadRequest, "bulwarkd cannot honour %s: refused rather than ignored", strings.Join(bad, ", "))
	}
	cfg := req.Config
	if cfg == nil || cfg.Image == "" {
		return nil, nil, statusError(http.StatusBadRequest, "config: Image is required")
	}
	if cfg.StopSignal != "" && cfg.StopSignal != "SIGTERM" && cfg.StopSignal != "TERM" && cfg.StopSignal != "15" {
		return nil, nil, statusError(http.StatusBadRequest, "StopSignal %q: bulwarkd stops with SIGTERM, then SIGKILL", cfg.StopSignal)
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = id[:12]
	}
	er := &engine.Request{
		Identity: engine.Identity{UID: who.UID, GID: who.GID, Principal: "bulwarkd"},
		Tenant:   who.Tenant, Image: cfg.Image, Args: cfg.Cmd, Entrypoint: cfg.Entrypoint, Env: cfg.Env,
		Workdir: cfg.WorkingDir, User: cfg.User, Hostname: hostname, Name: id, TTY: cfg.Tty, Detach: true,
	}
	for _, e := range cfg.Env {
		if !strings.Contains(e, "=") {
			// The engine would read NAME from its own environment (the CLI's -e NAME): the
			// daemon's environment is not the client's.
			return nil, nil, statusError(http.StatusBadRequest, "Env %q: want NAME=VALUE", e)
		}
	}
	var warnings []string
	if hc := req.HostConfig; hc != nil {
		w, err := mapHostConfig(hc, er)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
	}
	// Networks, published ports, binds and volumes: networks.go and volumes.go.
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := mapNetworking(cfg, hc, req.NetworkingConfig, er); err != nil {
		return nil, nil, err
	}
	if err := mapStorage(cfg, hc, er); err != nil {
		return nil, nil, err
	}
	return er, warnings, nil
}

func mapHostConfig(hc *container.HostConfig, er *engine.Request) ([]string, error) {
	var warnings []string
	refuse := func(field, why string) ([]string, error) {
		return nil, statusError(http.StatusBadRequest, "HostConfig.%s: %s", field, why)
	}
	if t := hc.LogConfig.Type; t != "" && t != "json-file" {
		return refuse("LogConfig", fmt.Sprintf("log driver %q: bulwarkd keeps json-file logs", t))
	}
	for k, v := range hc.LogConfig.Config {
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil || n <= 0 {
				if err == nil {
					err = fmt.Errorf("max-size %q: want a positive size", v)
				}
				return refuse("LogConfig", err.Error())
			}
			er.LogMaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return refuse("LogConfig", fmt.Sprintf("max-file %q: want a positive number", v))
			}
			er.LogMaxFiles = n
		default:
			return refuse("LogConfig", fmt.Sprintf("log option %q (max-size, max-file)", k))
		}
	}
	if n := hc.RestartPolicy.Name; n != "" && n != container.RestartPolicyDisabled {
		return nil, notImplemented(fmt.Sprintf("restart policy %q", n))
	}
	er.TTYRows, er.TTYCols = uint16(hc.ConsoleSize[0]), uint16(hc.ConsoleSize[1])
	er.CapAdd, er.CapDrop = hc.CapAdd, hc.CapDrop
	for field, mode := range map[string]string{"CgroupnsMode": string(hc.CgroupnsMode), "IpcMode": string(hc.IpcMode),
		"PidMode": string(hc.PidMode), "UTSMode": string(hc.UTSMode), "UsernsMode": string(hc.UsernsMode)} {
		if mode != "" && mode != "private" {
			return refuse(field, fmt.Sprintf("%q: every sandbox has its own namespaces", mode))
		}
	}
	er.Privileged = hc.Privileged // shown to policy, which denies it; the engine refuses it anyway
	if !hc.ReadonlyRootfs {
		warnings = append(warnings, "bulwarkd: the root filesystem is read-only in every sandbox; write to a volume, a --tmpfs or a bind the policy allows")
	}
	for _, o := range hc.SecurityOpt {
		k, v, _ := strings.Cut(o, "=")
		if k2, v2, ok := strings.Cut(o, ":"); !strings.Contains(o, "=") && ok {
			k, v = k2, v2
		}
		switch {
		case k == "no-new-privileges" && v != "false":
		case k == "seccomp" && v == "unconfined":
			er.Seccomp = v // policy sees it and denies
		default:
			return refuse("SecurityOpt", fmt.Sprintf("%q (no-new-privileges is always on; a seccomp profile file is the daemon host's path, not the client's)", o))
		}
	}
	for dst, opts := range hc.Tmpfs {
		t := dst
		if opts != "" {
			t += ":" + opts
		}
		er.Tmpfs = append(er.Tmpfs, t)
	}
	sort.Strings(er.Tmpfs)
	er.Memory = hc.Memory
	if hc.MemorySwap != 0 && hc.MemorySwap != hc.Memory && hc.MemorySwap != -1 {
		return refuse("MemorySwap", "swap limits are not set by bulwarkd")
	}
	if v := hc.MemorySwappiness; v != nil && *v != -1 {
		return refuse("MemorySwappiness", "swappiness is not set by bulwarkd")
	}
	er.CPUs = float64(hc.NanoCPUs) / 1e9
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		er.PidsLimit = *hc.PidsLimit
	}
	for _, u := range hc.Ulimits {
		er.Ulimits = append(er.Ulimits, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	if r := hc.Runtime; r != "" && r != "bulwark" && r != "runc" {
		return refuse("Runtime", fmt.Sprintf("%q: bulwarkd runs every container in a Bulwark sandbox", r))
	}
	if i := string(hc.Isolation); i != "" && i != "default" {
		return refuse("Isolation", fmt.Sprintf("%q", i))
	}
	return warnings, nil
}
