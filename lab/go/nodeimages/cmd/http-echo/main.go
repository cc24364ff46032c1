// Command http-echo is the lab's stand-in for docker.io/hashicorp/http-echo (which cannot be
// pulled here), accepting the flags the conformance suite passes to it.
//
//	/http-echo -listen=:5678 -text=apple [-status-code=200]
//
// Every path answers the text plus a newline with the headers X-App-Name: http-echo and
// X-App-Version, as the real server does: the routing checks take X-App-Name as proof that a
// backend (not the gateway) answered. /health answers {"status":"ok"}. The text may come from
// ECHO_TEXT instead of -text. SIGTERM or SIGINT stops it gracefully (exit 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const (
	appName    = "http-echo"
	appVersion = "aic-lab"
)

// options are the parsed command line.
type options struct {
	listen string
	text   string
	status int
}

func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("http-echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.listen, "listen", ":5678", "address and port to listen")
	fs.StringVar(&o.text, "text", "", "text to put on the webpage")
	fs.IntVar(&o.status, "status-code", http.StatusOK, "HTTP status code of the answer")
	version := fs.Bool("version", false, "display version information")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *version {
		return o, errVersion
	}
	if o.text == "" {
		o.text = getenv("ECHO_TEXT")
	}
	if o.text == "" {
		return o, errors.New("Missing -text option OR ENV var TEXT is empty!")
	}
	if fs.NArg() > 0 {
		return o, errors.New("Too many arguments!")
	}
	if o.status < 100 || o.status > 999 {
		return o, fmt.Errorf("bad -status-code %d", o.status)
	}
	return o, nil
}

var errVersion = errors.New("version requested")

// withAppHeaders drains the request body (so large uploads are not cut off) and sets the
// backend-only headers before the answer.
func withAppHeaders(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-App-Name", appName)
		w.Header().Set("X-App-Version", appVersion)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body+"\n")
	}
}

// logged prints one line per request to stdout, as the real server does.
func logged(out io.Writer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		fmt.Fprintf(out, "%s %s %s \"%s %s %s\" %q %v\n", time.Now().Format("2006/01/02 15:04:05"),
			r.Host, r.RemoteAddr, r.Method, r.URL.Path, r.Proto, r.UserAgent(), time.Since(start))
	})
}

func handler(o options, out io.Writer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", logged(out, withAppHeaders(o.status, o.text)))
	mux.Handle("/health", withAppHeaders(http.StatusOK, `{"status":"ok"}`))
	return mux
}

func main() {
	o, err := parseArgs(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, errVersion) {
		fmt.Fprintln(os.Stderr, appName+" "+appVersion)
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Fatalf("[ERR] cannot listen on %s: %v", o.listen, err)
	}
	os.Exit(serve(ln, handler(o, os.Stdout)))
}

// serve answers on ln until SIGTERM or SIGINT, then shuts down gracefully; the exit status.
func serve(ln net.Listener, h http.Handler) int {
	server := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- server.Serve(ln) }()
	log.Printf("[INFO] server is listening on %s", ln.Addr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errs:
		log.Printf("[ERR] server exited with: %v", err)
		return 1
	case <-sigs:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		log.Printf("[ERR] failed to shut down: %v", err)
		return 1
	}
	return 0
}
