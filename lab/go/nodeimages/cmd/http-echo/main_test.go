package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	env := func(string) string { return "" }
	o, err := parseArgs([]string{"-listen=:8080", "-text=model-a"}, env, io.Discard)
	if err != nil || o.listen != ":8080" || o.text != "model-a" || o.status != 200 {
		t.Fatalf("got %+v, %v", o, err)
	}
	if _, err := parseArgs([]string{"-listen=:8080"}, env, io.Discard); err == nil {
		t.Fatal("no -text: want an error")
	}
	o, err = parseArgs(nil, func(k string) string {
		if k == "ECHO_TEXT" {
			return "from-env"
		}
		return ""
	}, io.Discard)
	if err != nil || o.text != "from-env" || o.listen != ":5678" {
		t.Fatalf("got %+v, %v", o, err)
	}
	if _, err := parseArgs([]string{"-text=a", "extra"}, env, io.Discard); err == nil {
		t.Fatal("extra argument: want an error")
	}
	if _, err := parseArgs([]string{"-bogus"}, env, io.Discard); err == nil {
		t.Fatal("unknown flag: want an error")
	}
}

func TestAnswersTextWithBackendHeader(t *testing.T) {
	var logs strings.Builder
	srv := httptest.NewServer(handler(options{listen: ":0", text: "apple", status: 200}, &logs))
	defer srv.Close()
	for _, path := range []string{"/", "/v1/completions", "/v1/split?x=1"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "apple\n" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-App-Name"); got != "http-echo" {
			t.Fatalf("%s: X-App-Name %q", path, got)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q", path, got)
		}
	}
	if !strings.Contains(logs.String(), `"POST /v1/completions HTTP/1.1"`) {
		t.Fatalf("request log: %q", logs.String())
	}
	resp, err := http.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "{\"status\":\"ok\"}\n" || resp.Header.Get("X-App-Name") != "http-echo" {
		t.Fatalf("/health: %q %v", body, resp.Header)
	}
}

func TestStatusCode(t *testing.T) {
	srv := httptest.NewServer(handler(options{text: "teapot", status: 418}, io.Discard))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 418 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
