package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
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

// ZstdDecoder returns the uncompressed stream of the zstd stream r; its Close releases the
// decoder (not r). A failure to decode is an error of the stream's Read, never a short stream
// that ends cleanly. The store is given one (Options): the bulwark CLI, which every run starts,
// decodes through bulwark-admin (engine.HelperZstd) so that it links no zstd decoder; the
// others in process (image/zstd).
type ZstdDecoder func(r io.Reader) (io.ReadCloser, error)

// errNoZstd refuses a zstd stream in a store opened without a decoder.
var errNoZstd = errors.New("zstd layer: this store was opened without a zstd decoder")

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
func (s *Store) decompress(r io.Reader) (out io.Reader, c Compression, close func(), err error) {
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
		if s.zstd == nil {
			return nil, 0, nil, errNoZstd
		}
		zr, err := s.zstd(br)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("zstd layer: %w", err)
		}
		return zr, Zstd, func() { zr.Close() }, nil
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
