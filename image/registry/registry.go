// Package registry pulls images from and pushes them to OCI distribution (API v2) registries,
// into and out of an image.Store. Only the commands that move images over the network link it
// (bulwark-admin's image pull and push, bulwarkd's pull): the run path reads the store alone.
package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/image"
)

// ErrPlainHTTP refuses an unencrypted connection to a registry that is not on loopback.
var ErrPlainHTTP = errors.New("plain HTTP to a non-loopback registry is not allowed (configure it as insecure to permit)")

// Options configures pull and push against an OCI distribution (API v2) registry.
type Options struct {
	// PlainHTTP permits unencrypted HTTP to a registry not on loopback. Loopback is always allowed.
	PlainHTTP bool
	// CAFile adds a PEM bundle of CAs trusted for the registry's TLS certificate.
	CAFile string
	// Username and Password are basic credentials, also used for the bearer-token exchange when
	// the registry challenges. Empty means the docker config keychain, then anonymous.
	Username, Password string
	// Progress, if set, is called as bytes move: done of total for the whole transfer.
	Progress func(done, total int64)
	// Note, if set, is told what a pull changed: device nodes and fifos under /dev in a layer,
	// which unpack drops.
	Note    func(string)
	Context context.Context
}

// guard is an http.RoundTripper that refuses plain HTTP except to loopback. go-containerregistry
// itself would fall back to HTTP for any RFC 1918 address, which an on-path attacker could use.
type guard struct {
	next      http.RoundTripper
	plainHTTP bool
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.plainHTTP && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("%w: %s", ErrPlainHTTP, req.URL.Host)
	}
	return g.next.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (o Options) remoteOptions() ([]remote.Option, error) {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	ctx := o.Context
	if ctx == nil {
		ctx = context.Background()
	}
	opts := []remote.Option{remote.WithTransport(guard{next: tr, plainHTTP: o.PlainHTTP}), remote.WithContext(ctx),
		remote.WithUserAgent("bulwark")}
	if o.Username != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: o.Username, Password: o.Password}))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	return opts, nil
}

func (o Options) parse(ref string) (name.Reference, error) {
	var nopts []name.Option
	if o.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry reference %q: %w", ref, err)
	}
	return r, nil
}

// Pull fetches ref from its registry into the store s, verifying every blob against its digest,
// and tags it localTag (ref itself when empty). The manifest's digest is that of the bytes
// received; whether it is trusted is for signing to decide.
func Pull(s *image.Store, ref, localTag string, o Options) (ocispec.Descriptor, error) {
	if localTag == "" {
		localTag = ref
	}
	// A tag the store refuses is refused before anything is fetched.
	if _, err := image.ParseRef(localTag); err != nil {
		return ocispec.Descriptor{}, err
	}
	rr, err := o.parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	ropts, err := o.remoteOptions()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	top, err := remote.Get(rr, ropts...)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	topDesc := ocispec.Descriptor{MediaType: string(top.MediaType), Digest: digest.Digest(top.Digest.String()), Size: top.Size}
	var done int64
	total := image.TransferSize(top.Manifest, string(top.MediaType), func(d ocispec.Descriptor) []byte {
		m, err := remote.Get(rr.Context().Digest(d.Digest.String()), ropts...)
		if err != nil {
			return nil
		}
		return m.Manifest
	})
	fetch := func(d ocispec.Descriptor) (io.ReadCloser, error) {
		dref := rr.Context().Digest(d.Digest.String())
		if d.Digest == topDesc.Digest {
			return io.NopCloser(bytes.NewReader(top.Manifest)), nil
		}
		if image.IsManifestType(d.MediaType) {
			m, err := remote.Get(dref, ropts...)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(bytes.NewReader(m.Manifest)), nil
		}
		l, err := remote.Layer(dref, ropts...)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		return &progressReader{rc: rc, done: &done, total: total, fn: o.Progress}, nil
	}
	desc, err := s.Copy(topDesc, fetch, localTag, o.Note)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return desc, nil
}

type progressReader struct {
	rc    io.ReadCloser
	done  *int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.rc.Read(b)
	*p.done += int64(n)
	if p.fn != nil {
		p.fn(*p.done, p.total)
	}
	return n, err
}

func (p *progressReader) Close() error { return p.rc.Close() }

// Push uploads the local image of the store s to the registry reference ref. Every blob is
// verified against its digest first, so a tampered store is not propagated.
func Push(s *image.Store, local, ref string, o Options) (ocispec.Descriptor, error) {
	desc, err := s.Resolve(local)
	if err != nil {
		return desc, err
	}
	if err := s.Verify(desc); err != nil {
		return desc, err
	}
	rr, err := o.parse(ref)
	if err != nil {
		return desc, err
	}
	ropts, err := o.remoteOptions()
	if err != nil {
		return desc, err
	}
	h, err := v1.NewHash(desc.Digest.String())
	if err != nil {
		return desc, err
	}
	img, err := layout.Path(s.Dir()).Image(h)
	if err != nil {
		return desc, fmt.Errorf("open %s for push: %w", local, err)
	}
	if o.Progress != nil {
		// go-containerregistry closes the channel when Write returns; wait for the last update so
		// none arrives after the caller has finished its progress display.
		ch := make(chan v1.Update, 16)
		drained := make(chan struct{})
		ropts = append(ropts, remote.WithProgress(ch))
		go func() {
			defer close(drained)
			for u := range ch {
				o.Progress(u.Complete, u.Total)
			}
		}()
		defer func() {
			select {
			case <-drained:
			case <-time.After(time.Second): // Write failed before it took charge of the channel
			}
		}()
	}
	if err := remote.Write(rr, img, ropts...); err != nil {
		return desc, fmt.Errorf("push %s: %w", ref, err)
	}
	return desc, nil
}
