// Package proxyproto accepts the PROXY protocol (v1 text and v2 binary, as
// sent by HAProxy, AWS NLB, and most L4 load balancers) on a net.Listener,
// so that RemoteAddr reports the client instead of the load balancer.
//
// The header is read lazily, on the first Read or RemoteAddr of an accepted
// connection, never inside Accept: a client that connects and stays silent
// holds up only its own connection (until HeaderTimeout), not the accept
// loop. net/http calls RemoteAddr from the connection's own goroutine, so
// this holds for http.Server too, unless a ConnState hook calls
// RemoteAddr.
//
// Policy for peers outside Options.Trusted (when it is set): they are
// treated as direct clients, and if one of them sends a PROXY header the
// connection is rejected with ErrUntrustedPeer. Passing such a header on as
// data would hand the application a line that names a forged client; ignoring
// it silently would hide a misconfiguration or an attack. With Required,
// untrusted peers are rejected outright, since they can never send an
// acceptable header.
package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultHeaderTimeout bounds how long a new connection may take to send
// its header (or, without a header, its first bytes).
const DefaultHeaderTimeout = 5 * time.Second

var (
	// ErrMalformed reports a header that starts with a PROXY signature but
	// is not a valid header.
	ErrMalformed = errors.New("malformed PROXY header")
	// ErrMissingHeader reports a connection without a header when one is
	// required.
	ErrMissingHeader = errors.New("PROXY header required")
	// ErrUntrustedPeer reports a header sent by a peer outside
	// Options.Trusted.
	ErrUntrustedPeer = errors.New("PROXY header from untrusted peer")
)

// Options configures a Listener.
type Options struct {
	// Trusted are the peers whose headers are believed. Empty means any
	// peer may send a header, which is only safe when nothing but the load
	// balancer can reach the listener.
	Trusted []netip.Prefix
	// Required rejects connections without a valid header.
	Required bool
	// HeaderTimeout bounds the header read; zero or less means
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// OnError, if set, is called (from the connection's goroutine, so it
	// must be safe for concurrent use) with every header error, after which
	// the connection is closed. Errors wrap ErrMalformed, ErrMissingHeader,
	// ErrUntrustedPeer, or the read error (os.ErrDeadlineExceeded on
	// timeout).
	OnError func(error)
}

type listener struct {
	net.Listener
	opts Options
	// anyPeer is set when Options.Trusted was empty. It is kept apart
	// from the normalized list so that a list of only invalid prefixes
	// trusts no one rather than everyone.
	anyPeer bool
}

// NewListener wraps inner so that accepted connections speak the PROXY
// protocol according to opts.
func NewListener(inner net.Listener, opts Options) net.Listener {
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = DefaultHeaderTimeout
	}
	trusted := make([]netip.Prefix, 0, len(opts.Trusted))
	for _, p := range opts.Trusted {
		if !p.IsValid() {
			continue
		}
		// Peers are compared unmapped, so IPv4-mapped prefixes must be too.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		trusted = append(trusted, p.Masked())
	}
	anyPeer := len(opts.Trusted) == 0
	opts.Trusted = trusted
	return &listener{Listener: inner, opts: opts, anyPeer: anyPeer}
}

// Accept returns the next connection without reading from it.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, l: l}, nil
}

func (l *listener) trusts(peer net.Addr) bool {
	if l.anyPeer {
		return true
	}
	var a netip.Addr
	switch p := peer.(type) {
	case *net.TCPAddr:
		a = p.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(peer.String())
		if err != nil {
			return false
		}
		a = ap.Addr()
	}
	a = a.Unmap()
	for _, p := range l.opts.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// conn is an accepted connection whose header is read on first use.
type conn struct {
	net.Conn
	l *listener

	once   sync.Once
	remote net.Addr // client address, valid after once
	err    error    // header error, sticky, valid after once

	mu           sync.Mutex
	pending      []byte    // application bytes read along with the header
	headerDone   bool      // deadlines now go straight to the socket
	readDeadline time.Time // the caller's read deadline
}

func (c *conn) init() {
	peer := c.Conn.RemoteAddr()
	c.remote = peer
	trusted := c.l.trusts(peer)
	if c.l.opts.Required && !trusted {
		c.fail(fmt.Errorf("%w: peer %s is not trusted to send one", ErrMissingHeader, peer))
		return
	}

	c.mu.Lock()
	deadline := time.Now().Add(c.l.opts.HeaderTimeout)
	if !c.readDeadline.IsZero() && c.readDeadline.Before(deadline) {
		deadline = c.readDeadline
	}
	err := c.Conn.SetReadDeadline(deadline)
	c.mu.Unlock()
	if err != nil {
		c.fail(err)
		return
	}

	h, rest, err := readHeader(c.Conn, trusted)

	c.mu.Lock()
	c.headerDone = true
	c.pending = rest
	derr := c.Conn.SetReadDeadline(c.readDeadline)
	c.mu.Unlock()

	switch {
	case err != nil:
		c.fail(err)
	case derr != nil:
		c.fail(derr)
	case h == nil && c.l.opts.Required:
		c.fail(ErrMissingHeader)
	case h != nil && !h.local:
		c.remote = net.TCPAddrFromAddrPort(h.src)
	}
}

// fail records err, reports it and closes the connection. An empty
// connection (EOF before any byte, as from a TCP health check) is closed
// without a report.
func (c *conn) fail(err error) {
	if !errors.Is(err, io.EOF) {
		err = fmt.Errorf("proxyproto: peer %s: %w", c.Conn.RemoteAddr(), err)
		if c.l.opts.OnError != nil {
			c.l.opts.OnError(err)
		}
	}
	c.err = err
	_ = c.Conn.Close()
}

// Read returns the bytes that followed the header, then reads the socket.
func (c *conn) Read(p []byte) (int, error) {
	c.once.Do(c.init)
	if c.err != nil {
		return 0, c.err
	}
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil // let the header buffer go
		}
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// RemoteAddr returns the client address from the header, or the real peer
// for connections without one (or with LOCAL / UNKNOWN, or a failed
// header). It reads the header first if that has not happened yet.
func (c *conn) RemoteAddr() net.Addr {
	c.once.Do(c.init)
	return c.remote
}

// SetReadDeadline applies t after the header has been read; the header read
// itself is bounded by HeaderTimeout or t, whichever is sooner.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	if !c.headerDone {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets the read deadline as SetReadDeadline does and the write
// deadline directly.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}
