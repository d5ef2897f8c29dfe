package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"testing/iotest"
)

// v2Header builds a v2 header with the given version/command and family
// bytes and payload (addresses plus TLVs).
func v2Header(verCmd, fam byte, payload []byte) []byte {
	b := append([]byte{}, v2Sig...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func v2TCP4(src, dst string, sport, dport uint16, tlvs []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	p := append(s[:], d[:]...)
	p = binary.BigEndian.AppendUint16(p, sport)
	p = binary.BigEndian.AppendUint16(p, dport)
	return v2Header(0x21, 0x11, append(p, tlvs...))
}

func v2TCP6(src, dst string, sport, dport uint16, tlvs []byte) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	p := append(s[:], d[:]...)
	p = binary.BigEndian.AppendUint16(p, sport)
	p = binary.BigEndian.AppendUint16(p, dport)
	return v2Header(0x21, 0x21, append(p, tlvs...))
}

// tlv encodes one type-length-value record.
func tlv(typ byte, v string) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func TestReadHeader(t *testing.T) {
	const data = "GET / HTTP/1.1\r\n\r\n"
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		in      []byte
		want    *header // nil: no header
		wantErr error
	}{
		{"no header", []byte(data), nil, nil},
		{"one byte of data", []byte("x"), nil, nil},
		{"signature prefix then EOF", []byte("PROX"), nil, nil},
		{"v2 signature prefix then EOF", v2Sig[:5], nil, nil},
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n" + data),
			&header{version: 1, src: ap("192.0.2.1:56324"), dst: ap("192.0.2.2:443")}, nil},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n" + data),
			&header{version: 1, src: ap("[2001:db8::1]:1"), dst: ap("[2001:db8::2]:65535")}, nil},
		{"v1 tcp6 mapped", []byte("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n"),
			&header{version: 1, src: ap("192.0.2.1:1"), dst: ap("[::1]:2")}, nil},
		{"v1 unknown", []byte("PROXY UNKNOWN ffff::1 whatever\r\n" + data), &header{version: 1, local: true}, nil},
		{"v1 unknown bare", []byte("PROXY UNKNOWN\r\n"), &header{version: 1, local: true}, nil},
		{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			&header{version: 1, src: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), dst: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}, nil},
		{"v2 tcp4", append(v2TCP4("192.0.2.1", "192.0.2.2", 56324, 443, nil), data...),
			&header{version: 2, src: ap("192.0.2.1:56324"), dst: ap("192.0.2.2:443")}, nil},
		{"v2 tcp6 with TLVs", append(v2TCP6("2001:db8::1", "2001:db8::2", 1, 2, append(tlv(0x05, "unique-id"), tlv(0xEA, "vpce-0123")...)), data...),
			&header{version: 2, src: ap("[2001:db8::1]:1"), dst: ap("[2001:db8::2]:2")}, nil},
		{"v2 local", append(v2Header(0x20, 0x00, nil), data...), &header{version: 2, local: true}, nil},
		{"v2 local with addresses", v2Header(0x20, 0x11, make([]byte, 12)), &header{version: 2, local: true}, nil},
		{"v2 unix", v2Header(0x21, 0x31, make([]byte, 216)), &header{version: 2, local: true}, nil},
		{"v2 udp4", v2Header(0x21, 0x12, make([]byte, 12)), &header{version: 2, local: true}, nil},
		{"v2 unspec", v2Header(0x21, 0x00, nil), &header{version: 2, local: true}, nil},
		{"v2 at payload limit", v2Header(0x21, 0x00, make([]byte, maxV2Payload)), &header{version: 2, local: true}, nil},

		{"v1 no CRLF", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n" + string(make([]byte, 120))), nil, ErrMalformed},
		{"v1 too long", []byte("PROXY UNKNOWN " + string(bytes.Repeat([]byte("a"), 100)) + "\r\n"), nil, ErrMalformed},
		{"v1 truncated", []byte("PROXY TCP4 192.0.2.1"), nil, ErrMalformed},
		{"v1 bad proto", []byte("PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n"), nil, ErrMalformed},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n"), nil, ErrMalformed},
		{"v1 tcp6 with ipv4", []byte("PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n"), nil, ErrMalformed},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n"), nil, ErrMalformed},
		{"v1 signed port", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n"), nil, ErrMalformed},
		{"v1 double space", []byte("PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n"), nil, ErrMalformed},
		{"v1 extra field", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n"), nil, ErrMalformed},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), nil, ErrMalformed},
		{"v1 bare CR", []byte("PROXY TCP4 192.0.2.1\r192.0.2.2 1 2\r\n"), nil, ErrMalformed},
		{"v2 bad version", v2Header(0x11, 0x11, make([]byte, 12)), nil, ErrMalformed},
		{"v2 bad command", v2Header(0x22, 0x11, make([]byte, 12)), nil, ErrMalformed},
		{"v2 bad family", v2Header(0x21, 0x41, make([]byte, 12)), nil, ErrMalformed},
		{"v2 bad transport", v2Header(0x21, 0x13, make([]byte, 12)), nil, ErrMalformed},
		{"v2 short ipv4 block", v2Header(0x21, 0x11, make([]byte, 11)), nil, ErrMalformed},
		{"v2 short ipv6 block", v2Header(0x21, 0x21, make([]byte, 12)), nil, ErrMalformed},
		{"v2 over limit", v2Header(0x21, 0x00, make([]byte, maxV2Payload+1)), nil, ErrMalformed},
		{"v2 truncated", v2TCP4("192.0.2.1", "192.0.2.2", 1, 2, nil)[:20], nil, ErrMalformed},
		{"v2 truncated fixed part", v2Sig[:12:12], nil, ErrMalformed},
	}
	readers := map[string]func([]byte) io.Reader{
		"whole":   func(b []byte) io.Reader { return bytes.NewReader(b) },
		"bytes":   func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"dataerr": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for _, tc := range tests {
		for rname, mk := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				r := mk(tc.in)
				h, rest, err := readHeader(r, true)
				if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if err != nil {
					return
				}
				if (h == nil) != (tc.want == nil) || h != nil && *h != *tc.want {
					t.Fatalf("header = %+v, want %+v", h, tc.want)
				}
				remaining, _ := io.ReadAll(r)
				got := append(rest, remaining...)
				if want := tc.in[len(tc.in)-len(got):]; !bytes.Equal(got, want) || (h == nil && len(got) != len(tc.in)) {
					t.Fatalf("data after header = %q, want %q", got, want)
				}
			})
		}
	}
}

func TestReadHeaderUntrusted(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"),
		v2TCP4("192.0.2.1", "192.0.2.2", 1, 2, nil),
		[]byte("PROXY garbage"),
	} {
		if _, _, err := readHeader(bytes.NewReader(in), false); !errors.Is(err, ErrUntrustedPeer) {
			t.Errorf("%q: err = %v, want ErrUntrustedPeer", in, err)
		}
	}
	h, rest, err := readHeader(bytes.NewReader([]byte("GET /")), false)
	if err != nil || h != nil || string(rest) != "GET /" {
		t.Errorf("plain data from untrusted peer: %v %q %v", h, rest, err)
	}
}

func TestReadHeaderEmpty(t *testing.T) {
	if _, _, err := readHeader(bytes.NewReader(nil), true); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add(v2TCP6("2001:db8::1", "::1", 1, 2, tlv(1, "h2")))
	f.Add(v2TCP4("192.0.2.1", "192.0.2.2", 1, 2, []byte("data")))
	f.Fuzz(func(t *testing.T, in []byte) {
		type result struct {
			h      *header
			hdrLen int
			failed bool
		}
		run := func(r io.Reader) result {
			h, rest, err := readHeader(r, true)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && err != io.EOF {
					t.Fatalf("unexpected error %v", err)
				}
				return result{failed: true}
			}
			remaining, _ := io.ReadAll(r)
			after := append(rest, remaining...)
			if len(after) > len(in) || !bytes.Equal(after, in[len(in)-len(after):]) {
				t.Fatalf("data after header corrupted: %q of %q", after, in)
			}
			if h == nil && len(after) != len(in) {
				t.Fatalf("no header, but %d bytes lost", len(in)-len(after))
			}
			if h != nil && !h.local && (!h.src.IsValid() || h.src.Addr().Is4In6()) {
				t.Fatalf("bad source %v", h.src)
			}
			return result{h: h, hdrLen: len(in) - len(after)}
		}
		want := run(bytes.NewReader(in))
		// However the bytes arrive, the answer is the same.
		for _, r := range []io.Reader{
			iotest.OneByteReader(bytes.NewReader(in)),
			iotest.DataErrReader(bytes.NewReader(in)),
			iotest.HalfReader(bytes.NewReader(in)),
		} {
			got := run(r)
			if got.failed != want.failed || got.hdrLen != want.hdrLen || (got.h == nil) != (want.h == nil) || got.h != nil && *got.h != *want.h {
				t.Fatalf("chunked read gave %+v, whole read %+v", got, want)
			}
		}
		// From an untrusted peer, a header is an error and anything else is data.
		h, _, err := readHeader(bytes.NewReader(in), false)
		if h != nil || err == nil && want.h != nil {
			t.Fatalf("untrusted peer: header %v, err %v", h, err)
		}
	})
}
