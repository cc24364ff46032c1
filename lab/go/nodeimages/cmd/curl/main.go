// Command curl is a minimal HTTP/1.1 client for the lab's client pods: docker.io/curlimages/curl
// cannot be pulled here, and the suite parses curl's output, so this program accepts the
// flags the suite passes and prints what real curl prints for them.
//
//	curl -si --max-time 5 -X GET -H 'Name: value' --data-raw BODY http://host:port/path
//	curl -s --max-time 3 -H 'Name: value' URL | grep -qx body
//
// Options: -s/--silent, -S/--show-error, -i/--include (the response header block exactly as
// received, then the body), -I/--head, -f/--fail (exit 22 on HTTP >= 400), -L/--location,
// -X/--request, -H/--header (overrides or, with "Name:", removes a default header),
// -d/--data, --data-raw, --data-binary (POST unless -X), -o/--output, -w/--write-out
// (%{http_code}, %{response_code}, %{size_download}, %{time_total}, %{url_effective},
// %{content_type}, %{exitcode}, %{num_redirects}, \n \r \t), -m/--max-time,
// --connect-timeout, -A/--user-agent; short options combine (-si, -sSf). Only http:// URLs
// (a URL without a scheme is http). Exit statuses are curl's: 1 unsupported protocol, 2 bad
// option, 3 bad URL, 6 unresolved host, 7 connection refused, 18 partial body, 22 HTTP error
// with -f, 23 write error, 28 timeout, 47 too many redirects, 52 empty reply, 56 receive
// failure.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const userAgent = "curl/8-aic-lab"

// options are the parsed command line.
type options struct {
	silent, showError, include, head, fail, location bool
	method                                           string
	headers                                          []string
	data                                             []string
	hasData                                          bool
	output, writeOut, userAgent                      string
	maxTime, connectTimeout                          time.Duration
	url                                              string
}

// curlError is a failure with curl's exit status and message.
type curlError struct {
	code int
	msg  string
}

func (e *curlError) Error() string { return e.msg }

func fail(code int, format string, args ...any) *curlError {
	return &curlError{code, fmt.Sprintf(format, args...)}
}

// Short options that take an argument, and the long names of every option.
var (
	shortWithArg = map[byte]string{'X': "--request", 'H': "--header", 'd': "--data",
		'o': "--output", 'w': "--write-out", 'm': "--max-time", 'A': "--user-agent"}
	shortFlag = map[byte]string{'s': "--silent", 'S': "--show-error", 'i': "--include",
		'I': "--head", 'f': "--fail", 'L': "--location", 'k': "--insecure", 'g': "--globoff"}
	longWithArg = map[string]bool{"--request": true, "--header": true, "--data": true,
		"--data-raw": true, "--data-binary": true, "--data-ascii": true, "--output": true,
		"--write-out": true, "--max-time": true, "--connect-timeout": true, "--user-agent": true}
	longFlag = map[string]bool{"--silent": true, "--show-error": true, "--include": true,
		"--head": true, "--fail": true, "--location": true, "--insecure": true,
		"--globoff": true, "--http1.1": true}
)

func parseSeconds(name, v string) (time.Duration, *curlError) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fail(2, "option %s: expected a proper numerical parameter", name)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func (o *options) set(name, value string) *curlError {
	switch name {
	case "--silent":
		o.silent = true
	case "--show-error":
		o.showError = true
	case "--include":
		o.include = true
	case "--head":
		o.head = true
	case "--fail":
		o.fail = true
	case "--location":
		o.location = true
	case "--insecure", "--globoff", "--http1.1":
	case "--request":
		o.method = value
	case "--header":
		o.headers = append(o.headers, value)
	case "--data", "--data-ascii", "--data-binary":
		if strings.HasPrefix(value, "@") {
			b, err := os.ReadFile(value[1:])
			if err != nil {
				return fail(26, "Failed to open %s", value[1:])
			}
			if name != "--data-binary" {
				b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
			}
			value = string(b)
		}
		o.data, o.hasData = append(o.data, value), true
	case "--data-raw":
		o.data, o.hasData = append(o.data, value), true
	case "--output":
		o.output = value
	case "--write-out":
		if strings.HasPrefix(value, "@") {
			b, err := os.ReadFile(value[1:])
			if err != nil {
				return fail(26, "Failed to open %s", value[1:])
			}
			value = string(b)
		}
		o.writeOut = value
	case "--max-time", "--connect-timeout":
		d, err := parseSeconds(name, value)
		if err != nil {
			return err
		}
		if name == "--max-time" {
			o.maxTime = d
		} else {
			o.connectTimeout = d
		}
	case "--user-agent":
		o.userAgent = value
	}
	return nil
}

func parseArgs(args []string) (*options, *curlError) {
	o := &options{userAgent: userAgent}
	var urls []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case strings.HasPrefix(arg, "--") && len(arg) > 2:
			if longFlag[arg] {
				_ = o.set(arg, "")
				continue
			}
			if !longWithArg[arg] {
				return nil, fail(2, "option %s: is unknown", arg)
			}
			if i+1 >= len(args) {
				return nil, fail(2, "option %s: requires parameter", arg)
			}
			i++
			if err := o.set(arg, args[i]); err != nil {
				return nil, err
			}
		case strings.HasPrefix(arg, "-") && len(arg) > 1:
			for j := 1; j < len(arg); j++ {
				c := arg[j]
				if long, ok := shortFlag[c]; ok {
					_ = o.set(long, "")
					continue
				}
				long, ok := shortWithArg[c]
				if !ok {
					return nil, fail(2, "option -%c: is unknown", c)
				}
				value := arg[j+1:]
				if value == "" {
					if i+1 >= len(args) {
						return nil, fail(2, "option -%c: requires parameter", c)
					}
					i++
					value = args[i]
				}
				if err := o.set(long, value); err != nil {
					return nil, err
				}
				break
			}
		default:
			urls = append(urls, arg)
		}
	}
	switch len(urls) {
	case 0:
		return nil, fail(2, "no URL specified")
	case 1:
		o.url = urls[0]
	default:
		return nil, fail(2, "this curl takes one URL, got %d", len(urls))
	}
	return o, nil
}

// result is what the transfer did, for --write-out.
type result struct {
	status      int
	size        int64
	contentType string
	effective   string
	redirects   int
	start       time.Time
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program: the exit status for args, writing to stdout and stderr.
func run(args []string, stdout, stderr io.Writer) int {
	o, perr := parseArgs(args)
	if perr != nil {
		fmt.Fprintf(stderr, "curl: %s\ncurl: try 'curl --help' for more information\n", perr.msg)
		return perr.code
	}
	out := bufio.NewWriter(stdout)
	var body io.Writer = out
	var file *os.File
	if o.output != "" && o.output != "-" {
		f, err := os.Create(o.output)
		if err != nil {
			fmt.Fprintf(stderr, "curl: (23) Failure writing output to destination\n")
			return 23
		}
		file, body = f, f
	}
	res := result{start: time.Now(), effective: o.url}
	err := transfer(o, body, &res)
	if file != nil {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = fail(23, "Failure writing output to destination")
		}
	}
	code := 0
	var ce *curlError
	if errors.As(err, &ce) {
		code = ce.code
	}
	if o.writeOut != "" {
		_, _ = io.WriteString(out, writeOut(o.writeOut, &res, code, stderr))
	}
	if ferr := out.Flush(); ferr != nil && code == 0 {
		code, err = 23, fail(23, "Failure writing output to destination")
	}
	if code != 0 && (!o.silent || o.showError) {
		fmt.Fprintf(stderr, "curl: (%d) %s\n", code, err.Error())
	}
	return code
}

// writeOut expands a --write-out format.
func writeOut(format string, res *result, code int, stderr io.Writer) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '\\' && i+1 < len(format):
			i++
			switch format[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\':
				b.WriteByte('\\')
			default:
				b.WriteByte('\\')
				b.WriteByte(format[i])
			}
		case c == '%' && i+1 < len(format) && format[i+1] == '%':
			b.WriteByte('%')
			i++
		case c == '%' && strings.HasPrefix(format[i:], "%{") && strings.Contains(format[i:], "}"):
			end := strings.IndexByte(format[i:], '}')
			name := format[i+2 : i+end]
			i += end
			switch name {
			case "http_code", "response_code":
				fmt.Fprintf(&b, "%03d", res.status)
			case "size_download":
				fmt.Fprintf(&b, "%d", res.size)
			case "time_total":
				fmt.Fprintf(&b, "%.6f", time.Since(res.start).Seconds())
			case "url_effective":
				b.WriteString(res.effective)
			case "content_type":
				b.WriteString(res.contentType)
			case "exitcode":
				fmt.Fprintf(&b, "%d", code)
			case "num_redirects":
				fmt.Fprintf(&b, "%d", res.redirects)
			default:
				fmt.Fprintf(stderr, "curl: unknown --write-out variable: '%s'\n", name)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// transfer sends the request (following redirects with -L) and copies the answer to out.
func transfer(o *options, out io.Writer, res *result) error {
	method := o.method
	defaultMethod := "GET"
	if o.head {
		defaultMethod = "HEAD"
	} else if o.hasData {
		defaultMethod = "POST"
	}
	if method == "" {
		method = defaultMethod
	}
	var deadline time.Time
	if o.maxTime > 0 {
		deadline = res.start.Add(o.maxTime)
	}
	target := o.url
	data, hasData := strings.Join(o.data, "&"), o.hasData
	for {
		u, err := parseURL(target)
		if err != nil {
			return err
		}
		res.effective = u.String()
		location, err := once(o, u, method, data, hasData, deadline, out, res)
		if err != nil || location == "" || !o.location {
			if err == nil && o.fail && res.status >= 400 {
				return fail(22, "The requested URL returned error: %d", res.status)
			}
			return err
		}
		if res.redirects >= 50 {
			return fail(47, "Maximum (50) redirects followed")
		}
		next, perr := u.Parse(location)
		if perr != nil {
			return fail(3, "URL rejected: Malformed input to a URL function")
		}
		res.redirects++
		target = next.String()
		if res.status == 303 || ((res.status == 301 || res.status == 302) && method == "POST") {
			if o.method == "" {
				method = "GET"
			}
			data, hasData = "", false
		}
	}
}

func parseURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fail(3, "URL rejected: Malformed input to a URL function")
	}
	if !strings.EqualFold(u.Scheme, "http") {
		return nil, fail(1, "Protocol \"%s\" not supported", u.Scheme)
	}
	return u, nil
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// once does one request and response; it returns the Location of a 3xx answer.
func once(o *options, u *url.URL, method, data string, hasData bool, deadline time.Time,
	out io.Writer, res *result) (string, error) {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	host := u.Hostname()
	ctx := context.Background()
	connectBy := deadline
	if o.connectTimeout > 0 {
		if by := time.Now().Add(o.connectTimeout); connectBy.IsZero() || by.Before(connectBy) {
			connectBy = by
		}
	}
	if !connectBy.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, connectBy)
		defer cancel()
	}
	elapsed := func() int64 { return time.Since(res.start).Milliseconds() }
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		if timedOut(err) {
			return "", fail(28, "Resolving timed out after %d milliseconds", elapsed())
		}
		return "", fail(6, "Could not resolve host: %s", host)
	}
	var conn net.Conn
	var dialer net.Dialer
	for _, addr := range addrs {
		conn, err = dialer.DialContext(ctx, "tcp", net.JoinHostPort(addr, port))
		if err == nil {
			break
		}
	}
	if err != nil {
		if timedOut(err) {
			return "", fail(28, "Failed to connect to %s port %s after %d ms: Timeout was reached",
				host, port, elapsed())
		}
		reason := "Couldn't connect to server"
		if errors.Is(err, syscall.ECONNREFUSED) {
			reason = "Could not connect to server"
		}
		return "", fail(7, "Failed to connect to %s port %s after %d ms: %s", host, port,
			elapsed(), reason)
	}
	defer conn.Close()
	if !deadline.IsZero() {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := io.WriteString(conn, request(o, u, method, data, hasData)); err != nil {
		return "", failTransfer(err, 55, "Failed sending data to the peer", 0, elapsed())
	}
	return readResponse(bufio.NewReader(conn), method, o.include, o.location, out, res, elapsed)
}

// request is the request's bytes: request line, default headers as curl sends them, -H
// headers (overriding defaults with the same name; "Name:" removes one), body.
func request(o *options, u *url.URL, method, data string, hasData bool) string {
	type header struct{ name, value string }
	defaults := []header{{"Host", u.Host}, {"User-Agent", o.userAgent}, {"Accept", "*/*"}}
	if hasData {
		defaults = append(defaults, header{"Content-Length", strconv.Itoa(len(data))},
			header{"Content-Type", "application/x-www-form-urlencoded"})
	}
	var custom []header
	removed := map[string]bool{}
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			if n, isEmpty := strings.CutSuffix(h, ";"); isEmpty {
				custom = append(custom, header{strings.TrimSpace(n), ""})
			}
			continue
		}
		name = strings.TrimSpace(name)
		removed[strings.ToLower(name)] = true
		if value = strings.TrimSpace(value); value != "" {
			custom = append(custom, header{name, value})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, u.RequestURI())
	for _, h := range defaults {
		if !removed[strings.ToLower(h.name)] {
			fmt.Fprintf(&b, "%s: %s\r\n", h.name, h.value)
		}
	}
	for _, h := range custom {
		if h.value == "" {
			fmt.Fprintf(&b, "%s:\r\n", h.name)
		} else {
			fmt.Fprintf(&b, "%s: %s\r\n", h.name, h.value)
		}
	}
	b.WriteString("\r\n")
	if hasData {
		b.WriteString(data)
	}
	return b.String()
}

func failTransfer(err error, code int, msg string, got int64, ms int64) error {
	if timedOut(err) {
		return fail(28, "Operation timed out after %d milliseconds with %d bytes received", ms, got)
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return fail(56, "Recv failure: Connection reset by peer")
	}
	return fail(code, "%s", msg)
}

// readResponse copies the answer to out: with include, each header block as received; then
// the body (de-chunked, as curl writes it; skipped for a redirect that follow will follow).
// It returns a 3xx answer's Location.
func readResponse(r *bufio.Reader, method string, include, follow bool, out io.Writer,
	res *result, elapsed func() int64) (string, error) {
	var got int64
	for {
		status, headers, raw, err := readHead(r)
		if err != nil {
			if errors.Is(err, io.EOF) && raw == "" {
				return "", fail(52, "Empty reply from server")
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return "", failTransfer(err, 56, "Recv failure: "+err.Error(), got, elapsed())
			}
			return "", fail(8, "Weird server reply")
		}
		got += int64(len(raw))
		res.status, res.size = status, 0
		res.contentType = headers["content-type"]
		if include {
			if _, err := io.WriteString(out, raw); err != nil {
				return "", fail(23, "Failure writing output to destination")
			}
		}
		if status >= 100 && status < 200 && status != 101 {
			continue // an interim answer (100 Continue): the real one follows
		}
		location := ""
		if status >= 300 && status < 400 {
			location = headers["location"]
		}
		bodyOut := out
		if follow && location != "" {
			bodyOut = io.Discard
		}
		if err := copyBody(r, method, status, headers, bodyOut, res); err != nil {
			if ce, ok := err.(*curlError); ok {
				return "", ce
			}
			return "", failTransfer(err, 56, "Recv failure: "+err.Error(), got+res.size,
				elapsed())
		}
		return location, nil
	}
}

// readHead reads a status line and header lines up to the blank line; raw is them verbatim.
func readHead(r *bufio.Reader) (int, map[string]string, string, error) {
	var raw strings.Builder
	line, err := r.ReadString('\n')
	raw.WriteString(line)
	if err != nil {
		return 0, nil, raw.String(), err
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "HTTP/") {
		return 0, nil, raw.String(), io.ErrUnexpectedEOF
	}
	status, cerr := strconv.Atoi(fields[1])
	if cerr != nil || len(fields[1]) != 3 {
		return 0, nil, raw.String(), io.ErrUnexpectedEOF
	}
	headers := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		raw.WriteString(line)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, raw.String(), err
		}
		text := strings.TrimRight(line, "\r\n")
		if text == "" {
			return status, headers, raw.String(), nil
		}
		if name, value, ok := strings.Cut(text, ":"); ok {
			headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
		}
	}
}

func copyBody(r *bufio.Reader, method string, status int, headers map[string]string,
	out io.Writer, res *result) error {
	if method == "HEAD" || status == 204 || status == 304 {
		return nil
	}
	w := &countingWriter{w: out, n: &res.size}
	if strings.Contains(strings.ToLower(headers["transfer-encoding"]), "chunked") {
		return copyChunked(r, w)
	}
	if cl, ok := headers["content-length"]; ok {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return fail(8, "Invalid Content-Length: %s", cl)
		}
		copied, err := io.CopyN(w, r, n)
		if errors.Is(err, io.EOF) {
			return fail(18, "transfer closed with %d bytes remaining to read", n-copied)
		}
		return err
	}
	_, err := io.Copy(w, r)
	return err
}

func copyChunked(r *bufio.Reader, w io.Writer) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fail(18, "transfer closed with outstanding read data remaining")
			}
			return err
		}
		sizeText, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		size, perr := strconv.ParseInt(sizeText, 16, 64)
		if perr != nil || size < 0 {
			return fail(56, "Illegal or missing hexadecimal sequence in chunked-encoding")
		}
		if size == 0 {
			for { // trailers, up to the blank line
				t, err := r.ReadString('\n')
				if err != nil || strings.TrimRight(t, "\r\n") == "" {
					return nil
				}
			}
		}
		if _, err := io.CopyN(w, r, size); err != nil {
			if errors.Is(err, io.EOF) {
				return fail(18, "transfer closed with outstanding read data remaining")
			}
			return err
		}
		if _, err := r.ReadString('\n'); err != nil {
			return fail(18, "transfer closed with outstanding read data remaining")
		}
	}
}

type countingWriter struct {
	w io.Writer
	n *int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	if err != nil {
		return n, fail(23, "Failure writing output to destination")
	}
	return n, nil
}
