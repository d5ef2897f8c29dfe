// Command origin is the small upstream site the edge benchmarks proxy to: a
// fixed HTML page of about 2 KB, served as fast as net/http can.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18000", "listen address")
	size := flag.Int("size", 2048, "body size in bytes")
	flag.Parse()
	body := []byte("<!doctype html><html><body><p>" + strings.Repeat("x", max(*size-44, 0)) + "</p></body></html>\n")
	length := strconv.Itoa(len(body))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", length)
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
