package edge

import (
	"context"
	"net"
	"sync/atomic"
)

// Header order is a strong hint of what a client really is: browsers and
// HTTP libraries send the same headers in different orders, and net/http
// keeps headers in a map. headerOrderConn watches the bytes of each HTTP/1.1
// request as the server reads them and records the header names in order,
// so that the escalation engine can compare the order with the browser the
// user agent claims.

const (
	maxOrderNames   = 32 // names recorded per request
	maxOrderNameLen = 40 // longer names are cut (they are never a browser's)
)

type orderState uint8

const (
	stRequestLine orderState = iota // skipping the request line
	stLineStart                     // at the start of a header line
	stName                          // inside a header name
	stValue                         // skipping to the end of the line
	stBody                          // skipping a Content-Length body
	stOff                           // chunked or otherwise unparseable: stop
)

// headerOrderConn records the header names of the requests read from it.
type headerOrderConn struct {
	net.Conn
	last atomic.Pointer[[]string] // names of the last complete header block

	state   orderState
	names   []string
	name    [maxOrderNameLen]byte
	nameLen int
	// Content-Length of the request being read, to skip its body.
	inCL    bool
	cl      int64
	bodyRem int64
}

func (c *headerOrderConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.state != stOff {
		c.scan(p[:n])
	}
	return n, err
}

// Names returns the header names of the most recent request, lower case.
func (c *headerOrderConn) Names() []string {
	if p := c.last.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *headerOrderConn) scan(b []byte) {
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch c.state {
		case stRequestLine:
			if ch == '\n' {
				c.state = stLineStart
			}
		case stLineStart:
			switch ch {
			case '\r':
			case '\n': // end of the header block
				names := c.names
				c.last.Store(&names)
				c.names = nil
				c.state = stRequestLine
				if c.cl > 0 {
					c.state, c.bodyRem = stBody, c.cl
				}
				c.cl = 0
			case ' ', '\t': // obsolete line folding: part of the previous value
				c.state = stValue
			default:
				c.state, c.nameLen = stName, 0
				c.addNameByte(ch)
			}
		case stName:
			if ch == ':' {
				c.endName()
				c.state = stValue
			} else if ch == '\n' {
				c.state = stLineStart
			} else {
				c.addNameByte(ch)
			}
		case stValue:
			if c.inCL && ch >= '0' && ch <= '9' && c.cl < 1<<40 {
				c.cl = c.cl*10 + int64(ch-'0')
			}
			if ch == '\n' {
				c.inCL = false
				c.state = stLineStart
			}
		case stBody:
			skip := min(int64(len(b)-i), c.bodyRem)
			c.bodyRem -= skip
			i += int(skip) - 1
			if c.bodyRem == 0 {
				c.state = stRequestLine
			}
		}
	}
}

func (c *headerOrderConn) addNameByte(ch byte) {
	if c.nameLen < maxOrderNameLen {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		c.name[c.nameLen] = ch
		c.nameLen++
	}
}

func (c *headerOrderConn) endName() {
	name := internHeaderName(c.name[:c.nameLen])
	switch name {
	case "content-length":
		c.inCL, c.cl = true, 0
	case "transfer-encoding":
		// A chunked body cannot be skipped without parsing it; order
		// recording stops for this connection rather than misreading it.
		c.state = stOff
		c.last.Store(nil)
		return
	}
	if len(c.names) < maxOrderNames {
		c.names = append(c.names, name)
	}
}

// commonHeaders are interned so that recording allocates only the slice.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{
		"host", "connection", "user-agent", "accept", "accept-language", "accept-encoding",
		"referer", "cookie", "cache-control", "pragma", "upgrade-insecure-requests", "dnt",
		"sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "sec-fetch-site", "sec-fetch-mode",
		"sec-fetch-user", "sec-fetch-dest", "sec-gpc", "priority", "te", "if-none-match",
		"if-modified-since", "origin", "content-type", "content-length", "authorization",
		"x-forwarded-for", "x-forwarded-proto", "x-real-ip", "forwarded", "keep-alive", "range",
	} {
		m[h] = h
	}
	return m
}()

func internHeaderName(b []byte) string {
	if s, ok := commonHeaders[string(b)]; ok { // no allocation for the lookup
		return s
	}
	return string(b)
}

// headerOrderListener wraps accepted connections in headerOrderConn.
type headerOrderListener struct{ net.Listener }

func (l headerOrderListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headerOrderConn{Conn: c}, nil
}

type headerOrderKey struct{}

// withHeaderOrder is the server's ConnContext: it makes the connection's
// recorder reachable from its requests.
func withHeaderOrder(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*headerOrderConn); ok {
		return context.WithValue(ctx, headerOrderKey{}, hc)
	}
	return ctx
}

// headerOrder returns the header names of the request being served, or nil.
func headerOrder(ctx context.Context) []string {
	if hc, ok := ctx.Value(headerOrderKey{}).(*headerOrderConn); ok {
		return hc.Names()
	}
	return nil
}
