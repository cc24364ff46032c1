// Command metrics-demo is the lab's stand-in for quay.io/brancz/prometheus-example-app
// (which cannot be pulled here), with the same command line and metrics the suite relies on.
//
//	/bin/prometheus-example-app --bind=:8080
//
// Every path but /metrics and /err answers 200 "Hello from example application." and counts
// in http_requests_total{code="200",method="get"} (lower-case method, as client_golang's
// promhttp labels it); /err answers 404 and counts with code="404". /metrics (readiness
// probes, scrapes) is not counted, so a client that sends N requests to / finds exactly N.
// /metrics serves the Prometheus text format 0.0.4 with its proper Content-Type: without it
// Prometheus refuses the scrape unless a fallback protocol is configured.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ContentType is the exposition format's media type, as client_golang announces it.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

const version = "v0.5.0-aic-lab"

type key struct{ code, method string }

// counter is http_requests_total by (code, method).
type counter struct {
	mu     sync.Mutex
	counts map[key]uint64
}

func (c *counter) inc(code int, method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[key]uint64{}
	}
	c.counts[key{strconv.Itoa(code), strings.ToLower(method)}]++
}

// exposition renders the metrics in the text format, series sorted by labels.
func (c *counter) exposition() string {
	c.mu.Lock()
	keys := make([]key, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].code != keys[j].code {
			return keys[i].code < keys[j].code
		}
		return keys[i].method < keys[j].method
	})
	var b strings.Builder
	b.WriteString("# HELP http_requests_total Count of all HTTP requests\n")
	b.WriteString("# TYPE http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "http_requests_total{code=%q,method=%q} %d\n", k.code, k.method,
			c.counts[k])
	}
	c.mu.Unlock()
	b.WriteString("# HELP version Version information about this binary\n")
	b.WriteString("# TYPE version gauge\n")
	fmt.Fprintf(&b, "version{version=%q} 1\n", version)
	return b.String()
}

func handler(c *counter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "Hello from example application.")
		c.inc(http.StatusOK, r.Method)
	})
	mux.HandleFunc("/err", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		c.inc(http.StatusNotFound, r.Method)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_, _ = io.WriteString(w, c.exposition())
	})
	return mux
}

func main() {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	bind := fs.String("bind", ":8080", "The socket to bind to.")
	fs.Bool("h2c", false, "Accepted for compatibility; HTTP/2 cleartext is not served.")
	_ = fs.Parse(os.Args[1:])
	ln, err := net.Listen("tcp", *bind)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", *bind, err)
	}
	server := &http.Server{Handler: handler(&counter{}), ReadHeaderTimeout: 30 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- server.Serve(ln) }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errs:
		log.Fatal(err)
	case <-sigs:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = server.Shutdown(ctx)
}
