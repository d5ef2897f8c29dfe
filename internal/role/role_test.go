package role

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeRole struct {
	name string
	run  func(ctx context.Context, ready func(...Endpoint)) error
}

func (f *fakeRole) Name() string { return f.name }
func (f *fakeRole) Run(ctx context.Context, ready func(...Endpoint)) error {
	return f.run(ctx, ready)
}

func TestRegistryParse(t *testing.T) {
	reg := NewRegistry()
	for _, n := range []string{"edge", "tarpit"} {
		reg.Register(n, func() (Role, error) { return &fakeRole{name: n}, nil })
	}
	tests := []struct {
		spec    string
		want    string
		wantErr string
	}{
		{"", "edge,tarpit", ""},
		{"all", "edge,tarpit", ""},
		{"tarpit", "tarpit", ""},
		{" edge , edge ,tarpit", "edge,tarpit", ""},
		{"edge,admin", "", "unknown role(s) admin (available: edge, tarpit)"},
		{",", "", "no role selected"},
	}
	for _, tc := range tests {
		got, err := reg.Parse(tc.spec)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Parse(%q) error = %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.spec, got, err, tc.want)
		}
	}
}

func TestRunAllStopsOthersWhenOneFails(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Bool
	roles := []Role{
		&fakeRole{name: "ok", run: func(ctx context.Context, ready func(...Endpoint)) error {
			ready(Endpoint{Role: "ok", Name: "public", Addr: "x"})
			<-ctx.Done()
			stopped.Store(true)
			return nil
		}},
		&fakeRole{name: "bad", run: func(ctx context.Context, ready func(...Endpoint)) error {
			return boom
		}},
	}
	done := make(chan error, 1)
	go func() { done <- RunAll(context.Background(), roles, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "bad: boom") {
			t.Fatalf("RunAll = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunAll did not return after a role failed")
	}
	if !stopped.Load() {
		t.Fatal("the healthy role was not stopped")
	}
}

func TestRunAllReportsEndpointsOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mk := func(name string) Role {
		return &fakeRole{name: name, run: func(ctx context.Context, ready func(...Endpoint)) error {
			ready(Endpoint{Role: name, Name: "public"})
			ready(Endpoint{Role: name, Name: "again"}) // ignored
			<-ctx.Done()
			return ctx.Err()
		}}
	}
	got := make(chan []Endpoint, 2)
	go func() { _ = RunAll(ctx, []Role{mk("a"), mk("b")}, func(eps []Endpoint) { got <- eps }) }()
	select {
	case eps := <-got:
		if len(eps) != 2 {
			t.Fatalf("endpoints = %v", eps)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ready never called")
	}
}

func TestServerDrainsInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	srv := &Server{Listener: ln, Drain: 5 * time.Second, Server: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			body <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	<-started
	cancel() // shutdown begins while the request is in flight
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("new connections still accepted during drain")
	}
	close(release)
	if got := <-body; got != "done" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestServerDrainTimeoutClosesStragglers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &Server{Listener: ln, Drain: 200 * time.Millisecond, Server: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // never finishes on its own
	})}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String()); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the drain timeout")
	}
}
