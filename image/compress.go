package image

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression of a layer stream, detected from its magic bytes rather than trusted from a
// media type.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// zstdMaxWindow caps the decoder's memory: a hostile frame header cannot make us allocate more.
const zstdMaxWindow = 64 << 20

// layerMediaType is the OCI media type for a layer of compression c.
func layerMediaType(c Compression) string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// decompress sniffs r and returns a reader of the uncompressed stream. close releases decoder
// resources; it does not close r.
func decompress(r io.Reader) (out io.Reader, c Compression, close func(), err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch sniff(magic) {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("gzip layer: %w", err)
		}
		zr.Multistream(true)
		return zr, Gzip, func() { zr.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, 0, nil, fmt.Errorf("zstd layer: %w", err)
		}
		return zr, Zstd, zr.Close, nil
	}
	return br, Uncompressed, func() {}, nil
}

// sniff names the compression whose magic number starts b.
func sniff(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return Uncompressed
}
