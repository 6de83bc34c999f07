package ctlsec

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// serveLimited serves h under l on a loopback listener capped at
// l.MaxConns, and returns its address.
func serveLimited(t *testing.T, l HTTPLimits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Server(h)
	go srv.Serve(LimitListener(ln, l.MaxConns))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedByServer says whether the server closed c, waiting up to 10s.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c)
	return err == nil // EOF: the server closed it
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHTTPLimits: each limit ends the connection of a client that holds on
// past it.
func TestHTTPLimits(t *testing.T) {
	short := HTTPLimits{ReadHeader: 100 * time.Millisecond, Read: 300 * time.Millisecond, Write: 300 * time.Millisecond,
		Idle: 100 * time.Millisecond, MaxHeaderBytes: 4 << 10, MaxConns: 8}
	addr := serveLimited(t, short, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" { // a call that takes longer than the write timeout
			time.Sleep(3 * short.Write)
		}
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok\n"))
	}))

	t.Run("a client that sends nothing", func(t *testing.T) {
		if !closedByServer(t, dial(t, addr)) {
			t.Fatal("the connection was not closed")
		}
	})
	t.Run("a header never finished", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		if !closedByServer(t, c) {
			t.Fatal("the connection was not closed")
		}
	})
	t.Run("a body never finished", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		// The handler's read fails at the read deadline; it answers,
		// and the connection is not kept.
		if err == nil && !resp.Close {
			t.Fatalf("the connection is kept after a body cut short: %v", resp.Status)
		}
		if !closedByServer(t, c) {
			t.Fatal("the connection was not closed")
		}
	})
	t.Run("idle after a call", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("an idle connection was not closed: %v", err)
		}
	})
	t.Run("a header too large", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("a 16 KiB header answered %v %v, want 431", resp, err)
		}
	})
	t.Run("a call longer than the write timeout", func(t *testing.T) {
		c := dial(t, addr)
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The server gives up on the connection once the handler ends
		// past the write timeout.
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a call past the write timeout: %v, want the connection closed without an answer", err)
		}
	})
}

// TestLimitListener: past the cap, a connection waits to be accepted until
// one is closed.
func TestLimitListener(t *testing.T) {
	addr := serveLimited(t, HTTPLimits{ReadHeader: time.Minute, MaxConns: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	held := []net.Conn{dial(t, addr), dial(t, addr)}
	answered := make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: 20 * time.Second}
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a third connection was served while two were held (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("the third connection, once one was closed: %v", err)
	}
}
