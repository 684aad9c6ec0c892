// Package docker asks a Docker Engine API socket for its running containers and their init
// pids (GET /containers/json, then GET /containers/{id}/json for State.Pid), so a scan can read
// those containers from /proc like Bulwark's own. It only reads.
package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Container is one running container.
type Container struct {
	ID   string
	Name string
	Pid  int
}

// maxBody bounds every response read from the socket.
const maxBody = 8 << 20

// Running lists the running containers of the engine at socket (a unix socket path).
func Running(ctx context.Context, socket string) ([]Container, error) {
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	var list []struct {
		ID    string   `json:"Id"`
		Names []string `json:"Names"`
	}
	if err := get(ctx, c, "/containers/json", &list); err != nil {
		return nil, err
	}
	var out []Container
	for _, l := range list {
		var insp struct {
			Name  string `json:"Name"`
			State struct {
				Running bool `json:"Running"`
				Pid     int  `json:"Pid"`
			} `json:"State"`
		}
		if err := get(ctx, c, "/containers/"+url.PathEscape(l.ID)+"/json", &insp); err != nil {
			return nil, err
		}
		if !insp.State.Running || insp.State.Pid <= 0 {
			continue
		}
		name := insp.Name
		if name == "" {
			name = l.ID
		}
		out = append(out, Container{ID: l.ID, Name: name, Pid: insp.State.Pid})
	}
	return out, nil
}

func get(ctx context.Context, c *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("docker API %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("docker API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker API %s: %s", path, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("docker API %s: %w", path, err)
	}
	return nil
}
