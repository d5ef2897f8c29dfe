package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// edgeProcess is a `scrapedefense serve` the simulator started itself.
type edgeProcess struct {
	cmd     *exec.Cmd
	Public  string // host:port of the edge's public listener
	Admin   string // host:port of the edge's admin listener
	DataDir string
	stderr  *lockedBuffer
	done    chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // keep the start, where startup errors are
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listenKeys asks the binary for its configuration keys and returns the
// environment variables of every listener, so that every role the binary
// offers gets a free port without this program knowing the roles.
func listenKeys(ctx context.Context, bin string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, bin, "config", "keys").Output()
	if err != nil {
		return nil, fmt.Errorf("%s config keys: %w", bin, err)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[1], "SCRAPEDEFENSE_") {
			continue
		}
		if strings.HasSuffix(f[0], ".listen") || strings.HasSuffix(f[0], "_listen") {
			keys[f[0]] = f[1]
		}
	}
	if _, ok := keys["edge.listen"]; !ok {
		return nil, errors.New("the binary has no edge.listen key")
	}
	return keys, nil
}

// freePorts returns n distinct free loopback addresses. All are held open
// until all are chosen, so that none is handed out twice.
func freePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// startEdge starts the edge, trying again on fresh ports when another
// process took one of them in between.
func startEdge(ctx context.Context, bin, upstream, dataDir string, extraEnv []string) (*edgeProcess, error) {
	var err error
	for range 3 {
		var p *edgeProcess
		p, err = startEdgeOnce(ctx, bin, upstream, dataDir, extraEnv)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return p, err
		}
	}
	return nil, err
}

// startEdge runs `bin serve` with all roles on free loopback ports, a fresh
// data directory, and 127.0.0.1 as a trusted proxy so that each simulated
// client's X-Forwarded-For is believed.
func startEdgeOnce(ctx context.Context, bin, upstream, dataDir string, extraEnv []string) (*edgeProcess, error) {
	keys, err := listenKeys(ctx, bin)
	if err != nil {
		return nil, err
	}
	// The binary rejects unknown SCRAPEDEFENSE_ variables, and the run
	// must not inherit an operator's settings: start from a clean slate.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCRAPEDEFENSE_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"SCRAPEDEFENSE_DATA_DIR="+dataDir,
		"SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1/32",
		"SCRAPEDEFENSE_LOG_LEVEL=warn",
	)
	p := &edgeProcess{DataDir: dataDir, stderr: &lockedBuffer{}, done: make(chan struct{})}
	addrs, err := freePorts(len(keys))
	if err != nil {
		return nil, err
	}
	i := 0
	for key, name := range keys {
		addr := addrs[i]
		i++
		env = append(env, name+"="+addr)
		switch key {
		case "edge.listen":
			p.Public = addr
		case "edge.admin_listen":
			p.Admin = addr
		}
	}
	env = append(env, extraEnv...)
	args := []string{"serve"}
	if upstream != "" {
		args = append(args, "--upstream", upstream)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "public") {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("serve exited early:\n%s", p.stderr)
	case <-time.After(30 * time.Second):
		p.Stop()
		return nil, fmt.Errorf("serve did not start in 30 s:\n%s", p.stderr)
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// Stop ends the process gracefully, then for good.
func (p *edgeProcess) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// fetchDecisions reads the edge's stored decisions from its admin API.
func fetchDecisions(ctx context.Context, admin, tokenFile string) ([]storedDecision, error) {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read API token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/api/v1/decisions", nil)
	if err != nil {
		return nil, fmt.Errorf("decisions request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("list decisions: %s: %s", resp.Status, b)
	}
	var ds []storedDecision
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&ds); err != nil {
		return nil, fmt.Errorf("decode decisions: %w", err)
	}
	return ds, nil
}

func tokenPath(dataDir string) string { return filepath.Join(dataDir, "api.token") }
