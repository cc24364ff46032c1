package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawServer answers every connection with reply verbatim after reading the request head
// (and a body of Content-Length bytes); it returns the address and the requests it read.
func rawServer(t *testing.T, reply string) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan string, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				var b strings.Builder
				_ = req.Header.Write(&b)
				seen <- req.Method + " " + req.RequestURI + "\n" + b.String() + "\n" + string(body)
				_, _ = io.WriteString(c, reply)
			}(conn)
		}
	}()
	return ln.Addr().String(), seen
}

func curl(args ...string) (int, string, string) {
	var out, errs bytes.Buffer
	code := run(args, &out, &errs)
	return code, out.String(), errs.String()
}

const echoReply = "HTTP/1.1 200 OK\r\nX-App-Name: http-echo\r\nX-App-Version: 1.0.0\r\n" +
	"Date: Tue, 19 May 2020 07:36:50 GMT\r\nContent-Length: 6\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n\r\napple\n"

func TestIncludePrintsHeadersVerbatimThenBody(t *testing.T) {
	addr, seen := rawServer(t, echoReply)
	code, out, errs := curl("-si", "--max-time", "5", "-X", "GET", "-H", "x-model: b",
		"http://"+addr+"/v1/chat/completions?q=1")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if out != echoReply[:len(echoReply)-len("apple\n")]+"apple\n" {
		t.Fatalf("output %q", out)
	}
	req := <-seen
	for _, want := range []string{"GET /v1/chat/completions?q=1\n", "X-Model: b\r\n",
		"Accept: */*\r\n", "User-Agent: " + userAgent + "\r\n"} {
		if !strings.Contains(req, want) {
			t.Fatalf("request lacks %q:\n%s", want, req)
		}
	}
}

func TestSilentBodyOnlyAndDataRaw(t *testing.T) {
	addr, seen := rawServer(t, echoReply)
	code, out, _ := curl("-s", "--max-time", "3", "--data-raw", `{"model":"m"}`,
		"-H", "Content-Type: application/json", addr+"/v1/completions")
	if code != 0 || out != "apple\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	req := <-seen
	if !strings.HasPrefix(req, "POST /v1/completions\n") || !strings.HasSuffix(req, `{"model":"m"}`) ||
		!strings.Contains(req, "Content-Type: application/json\r\n") ||
		strings.Contains(req, "x-www-form-urlencoded") {
		t.Fatalf("request:\n%s", req)
	}
}

func TestChunkedBodyIsDecoded(t *testing.T) {
	reply := "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"4\r\nno r\r\n5\r\noute\n\r\n0\r\n\r\n"
	addr, _ := rawServer(t, reply)
	code, out, _ := curl("-si", "http://"+addr+"/")
	want := "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\nno route\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, output %q", code, out)
	}
	code, _, errs := curl("-sSf", "http://"+addr+"/")
	if code != 22 || !strings.Contains(errs, "curl: (22) The requested URL returned error: 404") {
		t.Fatalf("-f: exit %d, stderr %q", code, errs)
	}
}

func TestWriteOutAndOutputFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = io.WriteString(w, "up 1\n")
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "body")
	code, out, _ := curl("-s", "-o", file, "-w", `%{http_code} %{size_download} %{content_type}\n`,
		srv.URL+"/metrics")
	if code != 0 || out != "200 5 text/plain; version=0.0.4; charset=utf-8\n" {
		t.Fatalf("exit %d, output %q", code, out)
	}
	if b, _ := os.ReadFile(file); string(b) != "up 1\n" {
		t.Fatalf("file %q", b)
	}
}

func TestFollowsRedirectsWithL(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusFound)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "moved")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, out, _ := curl("-sL", "-w", "%{num_redirects} %{url_effective}", srv.URL+"/old")
	if code != 0 || out != "moved1 "+srv.URL+"/new" {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestErrorsHaveCurlsExitStatuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if code, out, errs := curl("-i", "http://"+closed+"/"); code != 7 || out != "" ||
		!strings.HasPrefix(errs, "curl: (7) Failed to connect to 127.0.0.1 port") {
		t.Fatalf("refused: exit %d, %q, %q", code, out, errs)
	}
	// -s alone keeps stderr quiet; -w still writes http_code 000.
	if code, out, errs := curl("-s", "-w", "%{http_code}", "http://"+closed+"/"); code != 7 ||
		out != "000" || errs != "" {
		t.Fatalf("silent refused: exit %d, %q, %q", code, out, errs)
	}
	// A server that accepts and never answers: --max-time ends it with 28.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	code, _, errs := curl("-sS", "--max-time", "0.5", "http://"+hang.Addr().String()+"/")
	if code != 28 || !strings.Contains(errs, "Operation timed out after") ||
		time.Since(start) > 3*time.Second {
		t.Fatalf("timeout: exit %d, %q after %v", code, errs, time.Since(start))
	}
	empty, _ := rawServer(t, "")
	if code, _, _ := curl("-s", "http://"+empty+"/"); code != 52 {
		t.Fatalf("empty reply: exit %d", code)
	}
	if code, _, _ := curl("-s", "https://example.invalid/"); code != 1 {
		t.Fatalf("https: exit %d", code)
	}
	if code, _, errs := curl("-s", "--bogus", "http://x/"); code != 2 ||
		!strings.Contains(errs, "option --bogus: is unknown") {
		t.Fatalf("bad option: exit %d, %q", code, errs)
	}
	if code, _, _ := curl("-s", "--max-time"); code != 2 {
		t.Fatalf("missing parameter: exit %d", code)
	}
	if code, _, _ := curl("-s", "http://nonexistent.invalid./"); code != 6 {
		t.Fatalf("unresolvable: exit %d", code)
	}
}

func TestParseCombinedShortOptions(t *testing.T) {
	o, err := parseArgs([]string{"-sSfiXPOST", "-HA: b", "-d", "x=1", "-m", "2.5", "u"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.silent || !o.showError || !o.fail || !o.include || o.method != "POST" ||
		o.headers[0] != "A: b" || o.data[0] != "x=1" || o.maxTime != 2500*time.Millisecond ||
		o.url != "u" {
		t.Fatalf("%+v", o)
	}
}
