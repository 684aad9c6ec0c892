package network

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The client runs in the namespace whose 127.0.0.1 the server is published on: the benchmark
// re-executes its own test binary there (nsenter) with clientEnv set to MODE URL CONC SECONDS.

const clientEnv = "BULWARK_NETBENCH_CLIENT"

// clientResult is what one client run prints (JSON on stdout).
type clientResult struct {
	Requests int64   `json:"requests"`
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	// FirstServed is when the first request was answered (unix ns), for mode "first".
	FirstServed int64 `json:"firstServed"`
}

func runClient(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "client: want MODE URL CONC SECONDS")
		return 2
	}
	conc, _ := strconv.Atoi(f[2])
	secs, _ := strconv.ParseFloat(f[3], 64)
	res, err := client(f[0], f[1], conc, time.Duration(secs*float64(time.Second)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func newHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second}
	d.SetMultipathTCP(false)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, MaxIdleConnsPerHost: 1, DisableCompression: true,
	}}
}

// client measures: "rps" — conc keep-alive connections asking GET url for d; "throughput" —
// one connection reading url (a large body) again and again for d; "first" — polling url
// every 2 ms (up to d) until it is answered.
func client(mode, url string, conc int, d time.Duration) (*clientResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res := &clientResult{}
	start := time.Now()
	switch mode {
	case "first":
		c := newHTTPClient()
		c.Timeout = 500 * time.Millisecond
		for ctx.Err() == nil {
			if resp, err := c.Get(url); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					res.FirstServed = time.Now().UnixNano()
					return res, nil
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil, fmt.Errorf("%s not served within %v", url, d)
	case "rps", "throughput":
		var reqs, bytes atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := newHTTPClient()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					resp, err := c.Do(req)
					if err != nil {
						if ctx.Err() == nil {
							firstErr.CompareAndSwap(nil, err)
						}
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					reqs.Add(1)
					bytes.Add(n)
				}
			}()
		}
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok && reqs.Load() == 0 {
			return nil, err
		}
		res.Requests, res.Bytes, res.Seconds = reqs.Load(), bytes.Load(), time.Since(start).Seconds()
		return res, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}
