package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark.dev/bulwark/image/imagetest"
	"bulwark.dev/bulwark/tests/internal/clitest"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// withQuotas gives tenants run-policy data (merged into their entries) and restarts the daemon,
// which loads its policy when it starts.
func (e *daemonEnv) withQuotas(t *testing.T, tenants map[string]map[string]any) {
	t.Helper()
	p := filepath.Join(e.dir, "policy", "data.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	all := data["bulwark"]["tenants"].(map[string]any)
	for tn, kv := range tenants {
		entry := all[tn].(map[string]any)
		for k, v := range kv {
			entry[k] = v
		}
	}
	testenv.WriteJSON(t, p, data)
	e.kill(t)
	e.start(t)
}

// unixClient is an HTTP client of the unix socket sock.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
}

func call(t *testing.T, c *http.Client, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://bulwarkd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type quotaStatus struct {
	Tenant string `json:"tenant"`
	Limits struct {
		Containers *int64 `json:"containers"`
		Memory     *int64 `json:"memory"`
	} `json:"limits"`
	Usage struct {
		Containers int64 `json:"containers"`
		Memory     int64 `json:"memory"`
	} `json:"usage"`
}

// Quotas through bulwarkd (issue 10): 50 creates at once from 50 goroutines on alice's socket
// against her max_containers of 10 leave exactly 10 containers, the other 40 answered 403 with
// QUOTA_CONTAINERS_EXCEEDED; a created container counts before it starts and its start is not
// refused; GET /bulwark/v1/quotas shows alice her limits and usage, refuses her bob's and shows
// the operator anyone's (audited); bob's memory quota refuses the docker create that would pass
// it, with the reason.
func TestQuotas(t *testing.T) {
	e := startDaemon(t, nil)
	e.withQuotas(t, map[string]map[string]any{
		e.alice.name: {"max_containers": 10},
		e.bob.name:   {"max_containers_memory": 100 << 20},
	})
	alice := unixClient(e.proxyAs(t, e.alice))
	const n = 50
	var mu sync.Mutex
	var created []string
	refused := 0
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := call(t, alice, "POST", "/v1.41/containers/create", `{"Image": "busybox:1", "Cmd": ["sleep", "600"]}`)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case status == http.StatusCreated:
				var r struct{ ID string }
				json.Unmarshal([]byte(body), &r)
				created = append(created, r.ID)
			case status == http.StatusForbidden && strings.Contains(body, "QUOTA_CONTAINERS_EXCEEDED"):
				refused++
			default:
				t.Errorf("create: %d %s", status, body)
			}
		}()
	}
	wg.Wait()
	if len(created) != 10 || refused != n-10 {
		t.Fatalf("%d created, %d refused with the quota's code; want 10 and %d", len(created), refused, n-10)
	}
	if status, body := call(t, alice, "GET", "/v1.41/containers/json?all=1", ""); status != http.StatusOK || strings.Count(body, `"Id"`) != 10 {
		t.Fatalf("alice's containers: %d %s", status, body)
	}
	if status, _ := call(t, alice, "POST", "/v1.41/containers/"+created[0]+"/start", ""); status != http.StatusNoContent {
		t.Fatalf("start of a created container within the quota: %d", status)
	}

	var st quotaStatus
	status, body := call(t, alice, "GET", "/bulwark/v1/quotas", "")
	if err := json.Unmarshal([]byte(body), &st); status != http.StatusOK || err != nil || st.Tenant != e.alice.name ||
		st.Limits.Containers == nil || *st.Limits.Containers != 10 || st.Usage.Containers != 10 || st.Limits.Memory != nil {
		t.Fatalf("alice's quotas: %d %s", status, body)
	}
	if status, body := call(t, alice, "GET", "/bulwark/v1/quotas?tenant="+e.bob.name, ""); status != http.StatusForbidden || !strings.Contains(body, "CROSS_TENANT") {
		t.Fatalf("alice reading bob's quotas: %d %s", status, body)
	}
	status, body = e.raw(t, "GET", "/bulwark/v1/quotas?tenant="+e.alice.name, nil)
	if err := json.Unmarshal([]byte(body), &st); status != http.StatusOK || err != nil || st.Usage.Containers != 10 {
		t.Fatalf("the operator reading alice's quotas: %d %s", status, body)
	}
	audited := false
	for _, r := range e.auditRecords(t, "daemon", "api.cross-tenant") {
		if attrs, _ := r["attrs"].(map[string]any); attrs["operation"] == "bulwark.quotas" && attrs["owner"] == e.alice.name {
			audited = true
		}
	}
	if !audited {
		t.Error("the operator's read of alice's quotas was not audited")
	}

	// bob: 100 MiB in all. 60 MiB fit; 60 more do not, nor the default limit (512 MiB).
	e.mustDocker(t, e.bob, "create", "--memory", "60m", "busybox:1", "true")
	for _, args := range [][]string{{"--memory", "60m"}, {}} {
		_, err := e.docker(t, e.bob, append(append([]string{"create"}, args...), "busybox:1", "true")...)
		if ce, ok := err.(*cliError); !ok || !strings.Contains(ce.stderr, "QUOTA_MEMORY_EXCEEDED") {
			t.Errorf("bob's create %v over his memory quota: %v", args, err)
		}
	}
	e.mustDocker(t, e.bob, "create", "--memory", "40m", "busybox:1", "true")
	status, body = e.raw(t, "GET", "/bulwark/v1/quotas?tenant="+e.bob.name, nil)
	if err := json.Unmarshal([]byte(body), &st); status != http.StatusOK || err != nil || st.Usage.Memory != 100<<20 || st.Usage.Containers != 2 {
		t.Fatalf("bob's quotas: %d %s", status, body)
	}
}

// TestImageQuota: a pull through bulwarkd is charged to the tenant's max_images_size; the pull
// that would pass it is refused with the reason (docker pull exits non-zero) and leaves no image,
// while a tenant without the limit pulls the same signed tag.
func TestImageQuota(t *testing.T) {
	e := startDaemon(t, nil)
	e.withQuotas(t, map[string]map[string]any{e.bob.name: {"max_images_size": 1024}})
	reg, _ := imagetest.StartRegistry(t)
	ref := reg + "/bb:signed"
	tar := testenv.BusyboxTar(t, filepath.Join(e.dir, "bb.tar"), []string{"sh", "true"}, nil)
	clitest.Must(t, e.root, "image", "import", tar, "--tag", ref)
	clitest.Must(t, e.root, "trust", "sign", ref)
	clitest.Must(t, e.root, "image", "push", ref)
	clitest.Must(t, e.root, "image", "rm", ref)

	_, err := e.docker(t, e.bob, "pull", ref)
	var ce *cliError
	if !errors.As(err, &ce) || ce.code() == 0 || !strings.Contains(ce.stderr, "QUOTA_IMAGES_EXCEEDED") {
		t.Fatalf("bob's pull past max_images_size: want refused with QUOTA_IMAGES_EXCEEDED, got %v", err)
	}
	if out := e.mustDocker(t, e.bob, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.Contains(out, "bb:signed") {
		t.Errorf("the refused pull left the image: %q", out)
	}
	e.mustDocker(t, e.alice, "pull", ref)
	e.mustDocker(t, e.alice, "image", "inspect", ref)
}
