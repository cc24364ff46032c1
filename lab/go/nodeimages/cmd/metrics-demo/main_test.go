package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestCountsExactlyTheRequestsSent(t *testing.T) {
	srv := httptest.NewServer(handler(&counter{}))
	defer srv.Close()
	// Before any request: no series yet, only the metadata and the version gauge.
	resp, body := get(t, srv.URL+"/metrics")
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	if strings.Contains(body, "http_requests_total{") {
		t.Fatalf("series before any request:\n%s", body)
	}
	for i := 0; i < 37; i++ {
		resp, body := get(t, srv.URL+"/")
		if resp.StatusCode != 200 || body != "Hello from example application." {
			t.Fatalf("GET /: %d %q", resp.StatusCode, body)
		}
	}
	get(t, srv.URL+"/some/path")
	get(t, srv.URL+"/err")
	post, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	get(t, srv.URL+"/metrics") // scrapes and probes are not counted
	_, body = get(t, srv.URL+"/metrics")
	want := "# HELP http_requests_total Count of all HTTP requests\n" +
		"# TYPE http_requests_total counter\n" +
		"http_requests_total{code=\"200\",method=\"get\"} 38\n" +
		"http_requests_total{code=\"200\",method=\"post\"} 1\n" +
		"http_requests_total{code=\"404\",method=\"get\"} 1\n" +
		"# HELP version Version information about this binary\n" +
		"# TYPE version gauge\n" +
		"version{version=\"v0.5.0-aic-lab\"} 1\n"
	if body != want {
		t.Fatalf("metrics:\n%s\nwant:\n%s", body, want)
	}
}
