// Package zstd decodes zstd-compressed image layers in process (image.ZstdDecoder), with a bound
// on the decoder's memory. bulwark-admin and bulwarkd link it; the bulwark CLI, started for every
// run, decodes through bulwark-admin instead (engine.HelperZstd).
package zstd

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// maxWindow caps the decoder's memory: a hostile frame header cannot make us allocate more.
const maxWindow = 64 << 20

// Decode returns the uncompressed stream of the zstd stream r (an image.ZstdDecoder).
func Decode(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}
