package ocitest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ext4pack/ext4pack/internal/oracle"
)

// Proxy is toxiproxy (github.com/Shopify/toxiproxy/v2), run in the test's
// process: a TCP proxy on 127.0.0.1 whose link can be made slow or
// faulty with toxics (latency, bandwidth, limit_data, reset_peer,
// timeout, ...). The module is a test dependency only.
type Proxy struct {
	// Host is the proxy's HOST:PORT, which leads to the upstream.
	Host string
	p    *toxiproxy.Proxy
}

var setUpToxiproxy sync.Once

// StartProxy starts a proxy to upstream (HOST:PORT) and stops it when t
// ends.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	setUpToxiproxy.Do(func() {
		// toxiproxy logs every connection through zerolog's global logger.
		zerolog.SetGlobalLevel(zerolog.Disabled)
		toxics.Register("ext4pack_break", new(BreakToxic))
	})
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "ext4pack-test", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{Host: p.Listen, p: p}
}

// Toxic adds a toxic, as toxiproxy's API takes it:
// {"name": ..., "type": "limit_data", "stream": "downstream", "toxicity": 1, "attributes": {"bytes": N}}.
// The defaults are toxiproxy's: downstream, toxicity 1.
func (p *Proxy) Toxic(t testing.TB, json string) {
	t.Helper()
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(json)); err != nil {
		t.Fatalf("toxic %s: %v", json, err)
	}
}

// Resets makes every connection the proxy closes end with a reset (RST),
// not a FIN: toxiproxy sets SO_LINGER 0 on the connections of a proxy
// that has a reset_peer toxic when they open, and this one never acts
// (toxicity 0). Call it before the connections are made.
func (p *Proxy) Resets(t testing.TB) {
	t.Helper()
	p.Toxic(t, `{"name": "linger0", "type": "reset_peer", "toxicity": 0, "attributes": {"timeout": 0}}`)
}

// Clear removes every toxic. toxiproxy may wait long, or forever, to
// remove a toxic from a connection whose data it holds: clear an idle
// proxy only.
func (p *Proxy) Clear() { p.p.Toxics.ResetToxics(context.Background()) }

// BreakToxic, the toxic "ext4pack_break", breaks the first Conns
// connections whose stream passes After bytes, once each: Mode "hold"
// delivers nothing more (the connection stays open, silent: a stall),
// "cut" closes it there (with a reset after Resets). The other
// connections pass untouched, so a client that reconnects goes on: the
// faults need no removal, which toxiproxy does badly under load.
type BreakToxic struct {
	After int64  `json:"after"`
	Conns int32  `json:"conns"`
	Mode  string `json:"mode"`

	broken atomic.Int32 // connections broken so far, shared by all
}

type breakState struct{ n int64 }

// NewState is each connection's count of bytes.
func (*BreakToxic) NewState() any { return new(breakState) }

// Pipe passes the stream, until it breaks it.
func (b *BreakToxic) Pipe(stub *toxics.ToxicStub) {
	st := stub.State.(*breakState)
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if st.n >= 0 && st.n+int64(len(c.Data)) > b.After && b.broken.Add(1) <= b.Conns {
				if keep := b.After - st.n; keep > 0 {
					stub.Output <- &stream.StreamChunk{Data: c.Data[:keep], Timestamp: c.Timestamp}
				}
				st.n = -1 // broken: never again
				if b.Mode == "cut" {
					stub.Close()
					return
				}
				for { // hold: swallow the rest, so the upstream never blocks
					select {
					case <-stub.Interrupt:
						return
					case c := <-stub.Input:
						if c == nil {
							stub.Close()
							return
						}
					}
				}
			}
			if st.n >= 0 {
				st.n += int64(len(c.Data))
			}
			stub.Output <- c
		}
	}
}

// StartRegistryRedirected starts a registry that redirects its blob GETs
// (distribution's redirect middleware, as to a CDN) to Python's
// http.server, which serves the registry's storage and ignores Range
// headers (it answers 200 and the whole file), through a proxy of its
// own, returned. It fails t if the server does honour ranges, which
// would make a test of a registry that ignores them prove nothing.
func StartRegistryRedirected(t testing.TB) (*Registry, *Proxy) {
	t.Helper()
	oracle.RequireTool(t, "python3", "python3")
	port := freePort(t)
	web := StartProxy(t, fmt.Sprintf("127.0.0.1:%d", port))
	reg := StartRegistryWith(t, RegistryOptions{RedirectTo: "http://" + web.Host + "/"})
	if err := os.MkdirAll(reg.Storage, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-m", "http.server", fmt.Sprint(port), "--bind", "127.0.0.1", "--directory", reg.Storage)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	probe := filepath.Join(reg.Storage, "range-probe")
	if err := os.WriteFile(probe, []byte("0123456789abcdefghij"), 0o644); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+web.Host+"/range-probe", nil)
		req.Header.Set("Range", "bytes=10-19")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				v, _ := exec.Command("python3", "--version").Output()
				t.Fatalf("%s's http.server answered %s to a Range request, not 200: it does not ignore ranges", strings.TrimSpace(string(v)), resp.Status)
			}
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("python3 -m http.server did not answer: %v", err)
		}
	}
	os.Remove(probe)
	return reg, web
}
