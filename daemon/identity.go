package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"sync"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/daemon/config"
)

// The caller's identity comes from the connection only: SO_PEERCRED of the unix socket, read
// once when the connection is accepted, or the verified client certificate of the TCP listener's
// mutual TLS, read once its handshake is done; either is mapped to a tenant by the daemon's
// configuration. Nothing in a request (headers, body, query) can change it.

type principalKey struct{}

// peer is who a connection is, or why that could not be read; resolved once.
type peer struct {
	once    sync.Once
	resolve func() (config.Principal, error)
	p       config.Principal
	err     error
}

func (pr *peer) principal() (config.Principal, error) {
	pr.once.Do(func() { pr.p, pr.err = pr.resolve() })
	return pr.p, pr.err
}

// connContext stores the connection's identity in its context: a unix peer's credentials now,
// a TLS client's certificate once the server has completed the handshake (before any request).
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	ident := s.ident.Load()
	var resolve func() (config.Principal, error)
	switch c := c.(type) {
	case *net.UnixConn:
		p, err := peerCred(c, ident)
		resolve = func() (config.Principal, error) { return p, err }
	case *tls.Conn:
		resolve = func() (config.Principal, error) { return certPrincipal(c, s.ident.Load()) }
	default:
		resolve = func() (config.Principal, error) { return config.Principal{}, errNoPeer }
	}
	return context.WithValue(ctx, principalKey{}, &peer{resolve: resolve})
}

func peerCred(uc *net.UnixConn, ident *config.Config) (config.Principal, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return config.Principal{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		cerr = err
	}
	if cerr != nil {
		return config.Principal{}, cerr
	}
	return ident.Resolve(int(cred.Uid), int(cred.Gid)), nil
}

// certPrincipal maps the verified leaf certificate's names (subject CN, DNS, email and URI
// SANs) to a principal. The listener requires and verifies a client certificate against the
// client CA in the handshake, so a connection without a verified chain never gets here; it is
// refused all the same.
func certPrincipal(c *tls.Conn, ident *config.Config) (config.Principal, error) {
	st := c.ConnectionState()
	if !st.HandshakeComplete || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return config.Principal{}, errNoPeer
	}
	leaf := st.VerifiedChains[0][0]
	names := append([]string{leaf.Subject.CommonName}, leaf.DNSNames...)
	names = append(names, leaf.EmailAddresses...)
	for _, u := range leaf.URIs {
		names = append(names, u.String())
	}
	return ident.ResolveCert(names), nil
}

var errNoPeer = unavailable("the connection's identity (peer credentials or client certificate) could not be read")

// principal is the caller of a request; an error when its connection had no identity.
func principal(ctx context.Context) (config.Principal, error) {
	p, ok := ctx.Value(principalKey{}).(*peer)
	if !ok {
		return config.Principal{}, errNoPeer
	}
	return p.principal()
}
