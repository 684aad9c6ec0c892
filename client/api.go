package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"

	"bulwark.dev/bulwark/daemon/bulwarkapi"
)

// The Docker Engine API calls the CLI makes (unversioned paths: the daemon's newest version).

// Create creates a container (name "" lets the daemon choose).
func (c *Client) Create(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	var q url.Values
	if name != "" {
		q = url.Values{"name": {name}}
	}
	var out container.CreateResponse
	err := c.call(ctx, http.MethodPost, "/containers/create", q, req, &out)
	return out, err
}

// Start starts a created container.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil, nil)
}

// List lists the caller's containers (running ones unless all).
func (c *Client) List(ctx context.Context, all bool) ([]container.Summary, error) {
	var out []container.Summary
	err := c.call(ctx, http.MethodGet, "/containers/json", url.Values{"all": {strconv.FormatBool(all)}}, nil, &out)
	return out, err
}

// Inspect is a container's inspect document as the daemon sent it.
func (c *Client) Inspect(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, nil, &out)
	return out, err
}

// Stop stops a container: SIGTERM, then SIGKILL after timeout (nil: the container's own).
func (c *Client) Stop(ctx context.Context, id string, timeout *time.Duration) error {
	var q url.Values
	if timeout != nil {
		q = url.Values{"t": {strconv.Itoa(int(timeout.Seconds()))}}
	}
	return c.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/stop", q, nil, nil)
}

// Kill signals a container's processes (signal: a name or number).
func (c *Client) Kill(ctx context.Context, id, signal string) error {
	return c.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/kill", url.Values{"signal": {signal}}, nil, nil)
}

// Remove removes a container (a running one with force; its anonymous volumes with volumes).
func (c *Client) Remove(ctx context.Context, id string, force, volumes bool) error {
	q := url.Values{"force": {strconv.FormatBool(force)}, "v": {strconv.FormatBool(volumes)}}
	return c.call(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), q, nil, nil)
}

// Logs streams a container's log (multiplexed unless the container has a terminal: raw).
func (c *Client) Logs(ctx context.Context, id string, follow, timestamps bool) (io.ReadCloser, bool, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "follow": {strconv.FormatBool(follow)}, "timestamps": {strconv.FormatBool(timestamps)}}
	resp, err := c.send(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs", q, nil)
	if err != nil {
		return nil, false, err
	}
	return resp.Body, isRaw(resp), nil
}

// waiter is a wait the daemon has registered: its answer comes when the condition holds.
type waiter struct {
	body io.ReadCloser
}

// Wait registers a wait for id's condition and returns once the daemon has (its headers are
// in), so that an exit after it is never missed; result reads the answer.
func (c *Client) Wait(ctx context.Context, id string, cond container.WaitCondition) (*waiter, error) {
	resp, err := c.send(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/wait", url.Values{"condition": {string(cond)}}, nil)
	if err != nil {
		return nil, err
	}
	return &waiter{body: resp.Body}, nil
}

// result is the exit status the wait answered.
func (w *waiter) result() (int, error) {
	defer w.body.Close()
	var out container.WaitResponse
	if err := json.NewDecoder(w.body).Decode(&out); err != nil {
		return -1, fmt.Errorf("wait: %w", err)
	}
	if out.Error != nil && out.Error.Message != "" {
		return int(out.StatusCode), fmt.Errorf("wait: %s", out.Error.Message)
	}
	return int(out.StatusCode), nil
}

// attach hijacks the connection for a container's output (stdout and stderr) from its start.
func (c *Client) attach(ctx context.Context, id string) (*stream, error) {
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	return c.hijack(ctx, "/containers/"+url.PathEscape(id)+"/attach", q, nil)
}

// Bulwark's own endpoints.

// Decide is a dry run of a create request: the decision and the plan, nothing started.
func (c *Client) Decide(ctx context.Context, req *container.CreateRequest) (*bulwarkapi.DecideResponse, error) {
	var out bulwarkapi.DecideResponse
	err := c.call(ctx, http.MethodPost, bulwarkapi.PathDecide, nil, req, &out)
	return &out, err
}

// Trust is the trust status the caller may see.
func (c *Client) Trust(ctx context.Context) (*bulwarkapi.TrustResponse, error) {
	var out bulwarkapi.TrustResponse
	err := c.call(ctx, http.MethodGet, bulwarkapi.PathTrust, nil, nil, &out)
	return &out, err
}

// Audit is the caller's newest audit records (since: an RFC 3339 time or a duration, "" for
// all; limit 0: the daemon's default).
func (c *Client) Audit(ctx context.Context, since string, limit int) (*bulwarkapi.AuditResponse, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out bulwarkapi.AuditResponse
	err := c.call(ctx, http.MethodGet, bulwarkapi.PathAudit, q, nil, &out)
	return &out, err
}

// AuditVerify is the daemon's verification of the whole audit chain.
func (c *Client) AuditVerify(ctx context.Context) (*bulwarkapi.VerifyResponse, error) {
	var out bulwarkapi.VerifyResponse
	err := c.call(ctx, http.MethodGet, bulwarkapi.PathAuditVerify, nil, nil, &out)
	return &out, err
}
