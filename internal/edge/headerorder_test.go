package edge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestHeaderOrderScan(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"chrome", []string{"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nsec-ch-ua: x\r\nUser-Agent: Chrome\r\nAccept: */*\r\n\r\n"},
			[]string{"host", "connection", "sec-ch-ua", "user-agent", "accept"}},
		{"split across reads", []string{"GET / HTTP/1.1\r\nHo", "st: a\r\nUser-Ag", "ent: python-requests\r", "\nAccept-Encoding: gzip\r\n\r", "\n"},
			[]string{"host", "user-agent", "accept-encoding"}},
		{"second request after a body", []string{"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab", "cde",
			"GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: a\r\n\r\n"},
			[]string{"user-agent", "host"}},
		{"chunked stops recording", []string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}, nil},
		{"bare LF", []string{"GET / HTTP/1.1\nHost: a\nAccept: b\n\n"}, []string{"host", "accept"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &headerOrderConn{}
			for _, ch := range tc.chunks {
				c.scan([]byte(ch))
			}
			if got := c.Names(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHeaderOrderBounded(t *testing.T) {
	c := &headerOrderConn{}
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\n")
	for range 100 {
		b.WriteString(strings.Repeat("X", 200) + ": v\r\n")
	}
	b.WriteString("\r\n")
	c.scan([]byte(b.String()))
	names := c.Names()
	if len(names) != maxOrderNames || len(names[0]) != maxOrderNameLen {
		t.Errorf("%d names of %d bytes, want %d of %d", len(names), len(names[0]), maxOrderNames, maxOrderNameLen)
	}
}

// TestHeaderOrderThroughServer: the order reaches the handler of each
// request on a keep-alive connection.
func TestHeaderOrderThroughServer(t *testing.T) {
	got := make(chan []string, 2)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- headerOrder(r.Context())
	}))
	srv.Listener = headerOrderListener{srv.Listener}
	srv.Config.ConnContext = withHeaderOrder
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, tc := range []struct {
		req  string
		want []string
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: u\r\nAccept: */*\r\n\r\n", []string{"host", "user-agent", "accept"}},
		{"GET /2 HTTP/1.1\r\nUser-Agent: u\r\nHost: a\r\n\r\n", []string{"user-agent", "host"}},
	} {
		if _, err := io.WriteString(conn, tc.req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if names := <-got; !reflect.DeepEqual(names, tc.want) {
			t.Errorf("names = %q, want %q", names, tc.want)
		}
	}
}

func FuzzHeaderOrderScan(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"), 7)
	f.Add([]byte("\n\n\n:::\r\n"), 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		c := &headerOrderConn{}
		if split > 0 && split < len(data) {
			c.scan(data[:split])
			c.scan(data[split:])
		} else {
			c.scan(data)
		}
		names := c.Names()
		if len(names) > maxOrderNames {
			t.Fatalf("%d names", len(names))
		}
		for _, n := range names {
			if len(n) > maxOrderNameLen {
				t.Fatalf("name of %d bytes", len(n))
			}
		}
	})
}
