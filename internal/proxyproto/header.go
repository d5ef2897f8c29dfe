package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Limits of the protocol (v1) and of our patience (v2).
const (
	// maxV1Len is the longest v1 header, CRLF included, per the spec.
	maxV1Len = 107
	// maxV2Payload caps the v2 address block plus TLVs. The wire format
	// allows 64 KiB; real load balancers send a few hundred bytes at most,
	// and the buffer is held for as long as the sender dribbles it.
	maxV2Payload = 4096
	// initialBuf holds any v1 header and common v2 headers in one read.
	initialBuf = 256
)

var (
	v1Sig = []byte("PROXY ")
	v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// header is a parsed PROXY header.
type header struct {
	version int
	// local means the header carries no usable client address (v2 LOCAL,
	// v1 UNKNOWN, or a v2 family we do not speak): use the real peer.
	local    bool
	src, dst netip.AddrPort
}

type sigMatch uint8

const (
	sigNeedMore sigMatch = iota
	sigNone
	sigV1
	sigV2
)

// matchSignature tells from the first bytes of a stream whether it starts
// with a PROXY header, or whether more bytes are needed to tell.
func matchSignature(b []byte) sigMatch {
	for _, c := range []struct {
		sig []byte
		m   sigMatch
	}{{v1Sig, sigV1}, {v2Sig, sigV2}} {
		n := min(len(b), len(c.sig))
		if n > 0 && bytes.Equal(b[:n], c.sig[:n]) {
			if n == len(c.sig) {
				return c.m
			}
			return sigNeedMore
		}
	}
	if len(b) == 0 {
		return sigNeedMore
	}
	return sigNone
}

// readHeader reads a PROXY header, if there is one, from the start of r.
// It returns the header (nil if the stream does not start with one) and
// the bytes it read beyond the header, which belong to the application.
// allowHeader false makes a header an ErrUntrustedPeer error as soon as its
// signature is seen. io.EOF before the first byte is returned as is.
func readHeader(r io.Reader, allowHeader bool) (*header, []byte, error) {
	buf := make([]byte, 0, initialBuf)
	need := 0 // bytes needed before the next parse attempt; 0 = any more
	for {
		if len(buf) >= need {
			h, n, more, err := parseBuffered(buf, allowHeader)
			switch {
			case err != nil:
				return nil, nil, err
			case more == 0 && h == nil:
				return nil, buf, nil
			case more == 0:
				return h, buf[n:], nil
			}
			need = len(buf) + more
			if need > cap(buf) {
				grown := make([]byte, len(buf), need)
				copy(grown, buf)
				buf = grown
			}
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == nil {
			continue
		}
		if len(buf) >= need && n > 0 {
			// Parse what arrived with the error first; the error comes back
			// on the next Read if it matters.
			continue
		}
		if errors.Is(err, io.EOF) {
			switch {
			case len(buf) == 0:
				return nil, nil, io.EOF
			case matchSignature(buf) == sigNeedMore:
				// A few bytes that only looked like a signature.
				return nil, buf, nil
			}
			return nil, nil, fmt.Errorf("%w: truncated header: %w", ErrMalformed, io.ErrUnexpectedEOF)
		}
		return nil, nil, fmt.Errorf("reading PROXY header: %w", err)
	}
}

// parseBuffered looks at the bytes read so far. It returns the header and
// its length, or more > 0 for how many more bytes are needed at least, or
// h == nil and more == 0 when the stream carries no header.
func parseBuffered(b []byte, allowHeader bool) (h *header, n, more int, err error) {
	m := matchSignature(b)
	if !allowHeader && (m == sigV1 || m == sigV2) {
		return nil, 0, 0, ErrUntrustedPeer
	}
	switch m {
	case sigNeedMore:
		return nil, 0, 1, nil
	case sigNone:
		return nil, 0, 0, nil
	case sigV1:
		i := bytes.Index(b[:min(len(b), maxV1Len)], []byte("\r\n"))
		if i < 0 {
			if len(b) >= maxV1Len {
				return nil, 0, 0, fmt.Errorf("%w: v1 header longer than %d bytes", ErrMalformed, maxV1Len)
			}
			return nil, 0, 1, nil
		}
		h, err := parseV1(b[:i])
		return h, i + 2, 0, err
	}
	if len(b) < 16 {
		return nil, 0, 16 - len(b), nil
	}
	size := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if size-16 > maxV2Payload {
		return nil, 0, 0, fmt.Errorf("%w: v2 header of %d bytes exceeds limit of %d", ErrMalformed, size-16, maxV2Payload)
	}
	if len(b) < size {
		return nil, 0, size - len(b), nil
	}
	h, err = parseV2(b[:size])
	return h, size, 0, err
}

// parseV1 parses a v1 header line without its CRLF:
// "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443".
func parseV1(line []byte) (*header, error) {
	s := string(line[len(v1Sig):])
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, fmt.Errorf("%w: v1: control character in header", ErrMalformed)
	}
	proto, rest, _ := strings.Cut(s, " ")
	if proto == "UNKNOWN" {
		return &header{version: 1, local: true}, nil // the rest is to be ignored
	}
	if proto != "TCP4" && proto != "TCP6" {
		return nil, fmt.Errorf("%w: v1: unknown protocol %q", ErrMalformed, proto)
	}
	f := strings.Split(rest, " ")
	if len(f) != 4 {
		return nil, fmt.Errorf("%w: v1: want 4 address fields, got %d", ErrMalformed, len(f))
	}
	src, err1 := parseV1Addr(f[0], proto)
	dst, err2 := parseV1Addr(f[1], proto)
	sport, err3 := parseV1Port(f[2])
	dport, err4 := parseV1Port(f[3])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("%w: v1: %w", ErrMalformed, err)
	}
	return &header{
		version: 1,
		src:     netip.AddrPortFrom(src.Unmap(), sport),
		dst:     netip.AddrPortFrom(dst.Unmap(), dport),
	}, nil
}

func parseV1Addr(s, proto string) (netip.Addr, error) {
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, fmt.Errorf("zoned address %q", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Is4() != (proto == "TCP4") {
		return netip.Addr{}, fmt.Errorf("address %s does not match %s", a, proto)
	}
	return a, nil
}

func parseV1Port(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad port %q", s)
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(p), nil
}

// parseV2 parses a complete v2 header (signature, 4 fixed bytes, payload).
func parseV2(b []byte) (*header, error) {
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return nil, fmt.Errorf("%w: v2: version %d", ErrMalformed, verCmd>>4)
	}
	af, transport := fam>>4, fam&0xf
	if af > 3 || transport > 2 {
		return nil, fmt.Errorf("%w: v2: unknown address family 0x%02x", ErrMalformed, fam)
	}
	payload := b[16:]
	switch verCmd & 0xf {
	case 0x0: // LOCAL: a health check from the proxy itself
		return &header{version: 2, local: true}, nil
	case 0x1: // PROXY
	default:
		return nil, fmt.Errorf("%w: v2: unknown command 0x%x", ErrMalformed, verCmd&0xf)
	}
	const stream = 1
	switch {
	case af == 1 && transport == stream: // TCP over IPv4
		if len(payload) < 12 {
			return nil, fmt.Errorf("%w: v2: IPv4 address block of %d bytes", ErrMalformed, len(payload))
		}
		src := netip.AddrFrom4([4]byte(payload[0:4]))
		dst := netip.AddrFrom4([4]byte(payload[4:8]))
		return &header{
			version: 2,
			src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(payload[8:10])),
			dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(payload[10:12])),
		}, nil
	case af == 2 && transport == stream: // TCP over IPv6
		if len(payload) < 36 {
			return nil, fmt.Errorf("%w: v2: IPv6 address block of %d bytes", ErrMalformed, len(payload))
		}
		src := netip.AddrFrom16([16]byte(payload[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(payload[16:32])).Unmap()
		return &header{
			version: 2,
			src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(payload[32:34])),
			dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(payload[34:36])),
		}, nil
	}
	// UNSPEC, UNIX, or datagrams: nothing we can use as a TCP client address.
	// TLVs, if any, are skipped with the rest of the payload.
	return &header{version: 2, local: true}, nil
}
