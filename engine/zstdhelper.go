package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"bulwark.dev/bulwark/internal/headbuf"
)

// ZstdDecodeCommand is bulwark-admin's hidden command that decodes the zstd stream of its
// standard input to its standard output (image/zstd).
const ZstdDecodeCommand = "__zstd-decode"

// maxHelperStderr bounds what is kept of a helper's standard error for its error.
const maxHelperStderr = 4096

// HelperZstd is an image.ZstdDecoder that decodes through bulwark-admin beside the running
// binary (the same owner, no one else may write it, the same build), executed through the
// descriptor that was checked: the bulwark CLI, started for every run, links no zstd decoder
// (its package's initialisation alone cost every run about 0.15 ms), and a zstd layer is
// decoded once, when the image is imported and unpacked. The helper's failure is an error of
// the stream's Read, so the layer is refused; what it outputs is still hashed against the
// layer's diff_id and bounded by the unpack limits.
func HelperZstd(r io.Reader) (io.ReadCloser, error) {
	cmd, path, release, err := adminCommand(context.Background(), "zstd decoder", ZstdDecodeCommand)
	if err != nil {
		return nil, err
	}
	defer release()
	cmd.Stdin = r
	h := &helperStream{cmd: cmd, path: path, stderr: headbuf.Buffer{Max: maxHelperStderr}}
	cmd.Stderr = &h.stderr
	if h.out, err = cmd.StdoutPipe(); err != nil {
		return nil, fmt.Errorf("zstd decoder %s: %w", path, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("zstd decoder %s: %w", path, err)
	}
	return h, nil
}

// helperStream is the decoded stream of a HelperZstd process. Its end is the process's success:
// Read returns io.EOF only once the process has exited 0 (and its copy of the input is done, so
// the caller may read the rest of the input itself).
type helperStream struct {
	cmd    *exec.Cmd
	path   string
	out    io.ReadCloser
	stderr headbuf.Buffer

	once    sync.Once
	waitErr error
}

func (h *helperStream) Read(p []byte) (int, error) {
	n, err := h.out.Read(p)
	if errors.Is(err, io.EOF) {
		if werr := h.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Close ends the process if it still runs and reaps it.
func (h *helperStream) Close() error {
	h.cmd.Process.Kill() // harmless once it has exited; Wait has not reaped it unless it was waited
	h.wait()
	return nil
}

func (h *helperStream) wait() error {
	h.once.Do(func() {
		if err := h.cmd.Wait(); err != nil {
			if msg := strings.TrimSpace(strings.TrimPrefix(h.stderr.String(), "bulwark: ")); msg != "" {
				err = errors.New(msg)
			}
			h.waitErr = fmt.Errorf("zstd decoder %s: %w", h.path, err)
		}
	})
	return h.waitErr
}
