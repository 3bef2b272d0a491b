package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSwappableHTTP: a request under way when the server is replaced
// finishes on the old one; the next connections get the new one's
// limits; shutdown ends both.
func TestSwappableHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		fmt.Fprint(w, "ok")
	})
	w := &swappableHTTP{ln: ln, build: func(lim HTTPLimitConfig) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: time.Duration(lim.ReadHeaderSeconds) * time.Second}
	}}
	served := make(chan error, 1)
	go func() { served <- w.serve(HTTPLimitConfig{ReadHeaderSeconds: 30}) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	slow := make(chan string, 1)
	go func() {
		resp, err := client.Get(base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	time.Sleep(200 * time.Millisecond) // the slow request is under way
	w.swap(HTTPLimitConfig{ReadHeaderSeconds: 1})
	// A silent connection is closed after the new server's 1 s.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, _ = io.ReadAll(c)
	c.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a silent connection after the swap lasted %s, want the new 1 s header timeout", took)
	}
	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatalf("a request after the swap: %v", err)
	}
	resp.Body.Close()
	close(release)
	select {
	case got := <-slow:
		if got != "ok" {
			t.Errorf("the request under way during the swap: %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request under way during the swap never finished")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// flakyListener fails its first Accepts with a temporary error, as a
// listener does when the process is out of descriptors (EMFILE).
type flakyListener struct {
	net.Listener
	fails int
}

type tempErr struct{}

func (tempErr) Error() string   { return "accept: too many open files" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

// Out of descriptors for a moment, the web listener waits and accepts
// again instead of ending (http.Server.Serve's behaviour, which the
// swappable accept loop must keep).
func TestSwappableHTTPSurvivesTemporaryAcceptErrors(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &swappableHTTP{ln: &flakyListener{Listener: raw, fails: 5}, build: func(HTTPLimitConfig) *http.Server {
		return &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })}
	}}
	served := make(chan error, 1)
	go func() { served <- w.serve(HTTPLimitConfig{}) }()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + raw.Addr().String() + "/")
	if err != nil {
		select {
		case err := <-served:
			t.Fatalf("the accept loop ended on a temporary error: %v", err)
		default:
		}
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.shutdown(ctx); err != nil {
		t.Error(err)
	}
}
