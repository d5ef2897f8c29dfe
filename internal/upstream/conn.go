package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync/atomic"
	"time"
)

const (
	noReadLimit = math.MaxInt64
	// drainLimit is how much of an unread body Close consumes, from what
	// has already arrived, to keep the connection.
	drainLimit = 4 << 10
)

// errHeaderTooLarge is returned when the response header exceeds
// maxResponseHeaderBytes.
var errHeaderTooLarge = errors.New("response header too large")

// conn is one upstream connection. It has a single owner at a time: the
// pool while idle, else the request using it (then its response body).
type conn struct {
	t         *Transport
	key       string
	nc        net.Conn
	cr        connReader
	br        *bufio.Reader // from t.readers while busy; nil while idle
	reused    bool          // came from the pool (a stale-retry candidate)
	idleSince time.Time
	closed    atomic.Bool
}

// connReader is what the bufio.Reader reads from: the connection, with
// the response header bounded in size and, with ResponseHeaderTimeout, in
// time.
//
// The read deadline is lazy: setting one costs timer operations, so it is
// not set for every request nor cleared after the header. A deadline left
// from an earlier request is always earlier than the current one, so when
// it fires, Read re-arms it for the current phase (or clears it for a body)
// and reads again; only the phase's own deadline ends a read.
type connReader struct {
	nc    net.Conn
	limit int64     // bytes left for the header; noReadLimit for a body
	until time.Time // the current phase's read deadline; zero: none
	armed time.Time // the read deadline set on nc; zero: none
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.limit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > r.limit {
		p = p[:r.limit]
	}
	for {
		n, err := r.nc.Read(p)
		if r.limit != noReadLimit {
			r.limit -= int64(n)
		}
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if !r.until.IsZero() && !time.Now().Before(r.until) {
			return 0, err // the phase's own deadline
		}
		if err := r.setDeadline(r.until); err != nil {
			return 0, err
		}
	}
}

func (r *connReader) setDeadline(d time.Time) error {
	if err := r.nc.SetReadDeadline(d); err != nil {
		return err
	}
	r.armed = d
	return nil
}

// startHeader begins reading a response header, due by deadline (zero:
// no limit).
func (r *connReader) startHeader(deadline time.Time) error {
	r.limit = maxResponseHeaderBytes
	r.until = deadline
	if deadline.IsZero() {
		return nil // a leftover deadline is cleared when it fires
	}
	if r.armed.IsZero() || r.armed.After(deadline) {
		return r.setDeadline(deadline)
	}
	return nil
}

// startBody begins reading a body, which only the context bounds.
func (r *connReader) startBody() {
	r.limit = noReadLimit
	r.until = time.Time{}
}

func (pc *conn) releaseReader() {
	if pc.br != nil {
		pc.br.Reset(nil)
		pc.t.readers.Put(pc.br)
		pc.br = nil
	}
}

// discard closes pc and frees its pool slot, once.
func (pc *conn) discard() {
	if pc.closed.CompareAndSwap(false, true) {
		_ = pc.nc.Close()
		pc.releaseReader()
		pc.t.pool.freeSlot()
	}
}

// closeKeepSlot closes pc but keeps its pool slot for a replacement dial.
func (pc *conn) closeKeepSlot() {
	if pc.closed.CompareAndSwap(false, true) {
		_ = pc.nc.Close()
		pc.releaseReader()
	}
}

// Body states. Transitions are atomic so that Close may race with Read (as
// http.Response.Body allows) without both touching the connection.
const (
	bodyIdle    int32 = iota // between reads
	bodyReading              // a Read is in progress
	bodyAborted              // Close ran during a Read; the Read finishes the connection
	bodyEOF                  // read to the end; the connection is released
	bodyClosed               // closed; the connection is released
)

// body is the response body: it hands the connection back to the pool when
// the body has been read to its end.
type body struct {
	t         *Transport
	pc        *conn
	rc        io.ReadCloser // net/http's body reader, on pc.br
	ctx       context.Context
	stop      func() bool // stops the cancellation watch; nil without one
	keepAlive bool
	state     atomic.Int32
}

func (b *body) Read(p []byte) (int, error) {
	if !b.state.CompareAndSwap(bodyIdle, bodyReading) {
		if b.state.Load() == bodyEOF {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	if err == nil {
		if b.state.CompareAndSwap(bodyReading, bodyIdle) {
			return n, nil
		}
		// Close interrupted us and left the connection to this goroutine.
		b.state.Store(bodyClosed)
		b.finish(false)
		return n, nil
	}
	if !b.state.CompareAndSwap(bodyReading, bodyEOF) {
		b.state.Store(bodyClosed)
		b.finish(false)
		return n, errBodyClosed
	}
	if err == io.EOF {
		b.finish(b.keepAlive)
		return n, io.EOF
	}
	b.state.Store(bodyClosed)
	b.finish(false)
	return n, wrapErr(b.ctx, b.pc.key, "read body", err)
}

// Close ends the body. Before the end, the rest is drained if it has already
// arrived and is short; otherwise the connection is closed.
func (b *body) Close() error {
	for {
		switch b.state.Load() {
		case bodyIdle:
			if b.state.CompareAndSwap(bodyIdle, bodyClosed) {
				b.finish(b.keepAlive && b.drain())
				return nil
			}
		case bodyReading:
			if b.state.CompareAndSwap(bodyReading, bodyAborted) {
				_ = b.pc.nc.Close() // unblocks the Read, which finishes
				return nil
			}
		default:
			return nil
		}
	}
}

// drain reads the rest of the body without waiting for the network: with
// the read deadline in the past only buffered bytes can be read.
func (b *body) drain() bool {
	if b.stop != nil && !b.stop() {
		return false
	}
	b.stop = nil
	past := time.Unix(1, 0)
	b.pc.cr.until = past // so that Read does not re-arm it
	if err := b.pc.cr.setDeadline(past); err != nil {
		return false
	}
	n, err := io.CopyN(io.Discard, b.rc, drainLimit+1)
	return err == io.EOF && n <= drainLimit
}

func (b *body) finish(reuse bool) {
	b.t.finish(b.pc, b.stop, reuse)
}
