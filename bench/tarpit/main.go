// Command tarpit-load opens many concurrent, slow-reading connections
// against a running tarpit, holds them for a while and reports how they
// fared. It needs one file descriptor per connection: raise ulimit -n.
//
//	go run ./bench/tarpit -url http://127.0.0.1:8001/.well-known/sd-archive/ -conns 10000 -hold 60s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type stats struct {
	dialErrors, writeErrors, statusErrors atomic.Int64
	open, closedEarly, held               atomic.Int64
	bytes                                 atomic.Int64
	statusCodes                           sync.Map // string -> *atomic.Int64
}

func main() {
	target := flag.String("url", "http://127.0.0.1:8001/.well-known/sd-archive/", "maze URL; each connection adds a distinct path below it")
	conns := flag.Int("conns", 10000, "concurrent connections")
	hold := flag.Duration("hold", 60*time.Second, "how long to hold the connections")
	rate := flag.Int("read-rate", 16, "bytes each connection reads per second")
	ramp := flag.Duration("ramp", 10*time.Second, "time over which connections are opened")
	perSubnet := flag.Int("per-subnet", 32, "connections per 127.x.y.0/24 source subnet (one per source address), so that the tarpit's per-subnet and per-client limits see many clients as in a real crawl; 0: dial from the default address")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "bad -url:", *target)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, *ramp+*hold)
	defer stop()

	var st stats
	var wg sync.WaitGroup
	start := time.Now()
	gap := *ramp / time.Duration(max(*conns, 1))
	for i := range *conns {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(ctx, u, i, *rate, localAddr(i, *perSubnet), &st)
		}()
		time.Sleep(gap)
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-tick.C:
			fmt.Printf("t=%4.0fs open=%d closed_early=%d bytes=%d dial_err=%d\n",
				time.Since(start).Seconds(), st.open.Load(), st.closedEarly.Load(), st.bytes.Load(), st.dialErrors.Load())
			continue
		case <-done:
		}
		break
	}
	fmt.Printf("connections=%d held_to_end=%d closed_early=%d dial_errors=%d write_errors=%d bad_status=%d bytes_read=%d elapsed=%s\n",
		*conns, st.held.Load(), st.closedEarly.Load(), st.dialErrors.Load(), st.writeErrors.Load(), st.statusErrors.Load(), st.bytes.Load(), time.Since(start).Round(time.Millisecond))
	// An error is a connection that did not get a 200 and hold to the end.
	failed := st.closedEarly.Load() + st.dialErrors.Load() + st.writeErrors.Load() + st.statusErrors.Load()
	fmt.Printf("error_rate=%.3f%% (%d of %d)\n", 100*float64(failed)/float64(max(*conns, 1)), failed, *conns)
	st.statusCodes.Range(func(k, v any) bool {
		fmt.Printf("status %s: %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
}

// localAddr spreads connections over loopback source addresses: connection
// i gets 127.a.b.c with perSubnet connections (c = 1..perSubnet) in each /24.
// Linux routes all of 127.0.0.0/8 to the loopback interface.
func localAddr(i, perSubnet int) net.Addr {
	if perSubnet <= 0 {
		return nil
	}
	perSubnet = min(perSubnet, 254)
	s := i / perSubnet
	return &net.TCPAddr{IP: net.IPv4(127, byte(1+s/256), byte(s%256), byte(1+i%perSubnet))}
}

func client(ctx context.Context, u *url.URL, i, rate int, local net.Addr, st *stats) {
	d := net.Dialer{LocalAddr: local}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		st.dialErrors.Add(1)
		return
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	path := u.EscapedPath() + "load-" + strconv.Itoa(i) + "/page.html"
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tarpit-load\r\nAccept: text/html\r\n\r\n", path, u.Host); err != nil {
		st.writeErrors.Add(1)
		return
	}
	br := bufio.NewReaderSize(conn, 512)
	line, err := br.ReadString('\n')
	if err != nil {
		st.closedEarly.Add(1)
		return
	}
	code := "?"
	if len(line) >= 12 {
		code = line[9:12]
	}
	c, _ := st.statusCodes.LoadOrStore(code, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	if code != "200" {
		st.statusErrors.Add(1)
		return
	}
	st.open.Add(1)
	defer st.open.Add(-1)
	buf := make([]byte, max(rate, 1))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n, err := io.ReadFull(br, buf)
		st.bytes.Add(int64(n))
		if err != nil {
			if ctx.Err() != nil {
				st.held.Add(1)
			} else {
				st.closedEarly.Add(1)
			}
			return
		}
		select {
		case <-ctx.Done():
			st.held.Add(1)
			return
		case <-t.C:
		}
	}
}
