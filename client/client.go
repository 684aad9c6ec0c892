// Package client is the bulwark CLI's way to bulwarkd (bulwark --host / BULWARK_HOST): the
// Docker Engine API calls the CLI's container commands need, with the Moby API types, and
// Bulwark's own /bulwark/v1/ endpoints, over the daemon's unix socket. bulwark-admin uses it in
// bulwark's place, for the command bulwark parsed (package op). The daemon decides who the
// caller is from the connection; nothing here says which tenant it acts for.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/common"

	"bulwark.dev/bulwark/client/op"
	"bulwark.dev/bulwark/errdefs"
)

// Client talks to one bulwarkd.
type Client struct {
	socket string
	http   *http.Client
}

// New parses host (unix:///path/to/bulwark.sock, op.ParseHost) into a client; nothing is
// dialled yet.
func New(host string) (*Client, error) {
	rest, err := op.ParseHost(host)
	if err != nil {
		return nil, err
	}
	c := &Client{socket: rest}
	c.http = &http.Client{Transport: &http.Transport{DialContext: c.dial, DisableCompression: true}}
	return c, nil
}

func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, fmt.Errorf("cannot reach bulwarkd at unix://%s: %w", c.socket, err)
	}
	return conn, nil
}

// Error is the daemon's answer to a request it refused or failed: its status and message. It
// carries the error class the status stands for (errdefs), so the CLI's exit statuses are the
// same as for a local command.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap is the status's error class.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusConflict:
		return errdefs.ErrConflict
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return errdefs.ErrInvalidArgument
	case http.StatusForbidden:
		return errdefs.ErrRefusedByPolicy
	}
	return nil
}

// request is one API call: the body (JSON-encoded when not nil) and the query.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := "http://bulwarkd" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send makes a call and returns the response of a successful one (2xx, 304); any other status
// is an *Error with the daemon's message.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

func checkStatus(resp *http.Response) error {
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var doc common.ErrorResponse
	if json.Unmarshal(b, &doc) != nil || doc.Message == "" {
		doc.Message = fmt.Sprintf("bulwarkd answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return &Error{Status: resp.StatusCode, Message: doc.Message}
}

// call makes a call and decodes its JSON answer into out (nil: the answer is dropped).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return nil
}

// stream is a hijacked connection: what the daemon sends after its answer's headers, and the
// write side (standard input) of the connection.
type stream struct {
	conn net.Conn
	rd   *bufio.Reader
	// raw: the bytes are a terminal's, not Docker's multiplexed frames.
	raw bool
}

func (s *stream) Read(p []byte) (int, error) { return s.rd.Read(p) }
func (s *stream) Close() error               { return s.conn.Close() }

// closeWrite ends the standard input the stream carries.
func (s *stream) closeWrite() error {
	if uc, ok := s.conn.(*net.UnixConn); ok {
		return uc.CloseWrite()
	}
	return nil
}

// hijack makes a call that takes over the connection (attach, exec start), as the docker CLI
// does: an upgrade to a raw stream.
func (c *Client) hijack(ctx context.Context, path string, query url.Values, body any) (*stream, error) {
	req, err := c.newRequest(ctx, http.MethodPost, path, query, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	conn, err := c.dial(ctx, "", "")
	if err != nil {
		return nil, err
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkStatus(resp); err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, errors.New(path + ": bulwarkd did not hand over the stream: " + resp.Status)
	}
	return &stream{conn: conn, rd: rd, raw: isRaw(resp)}, nil
}

// isRaw says whether a stream's bytes are raw (a terminal's) rather than multiplexed.
func isRaw(resp *http.Response) bool {
	return resp.Header.Get("Content-Type") == types.MediaTypeRawStream
}
