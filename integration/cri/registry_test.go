//go:build integration

package cri

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// critest's Image specs pull (cri-tools v1.36.0 pkg/validate/consts.go):
// they remove an image, pull it, look at it and remove it again, so these
// images cannot just be imported like the others. They are served by a
// registry on 127.0.0.1 inside the test's network namespace; containerd
// reaches it through hosts.toml (CRI registry config_path) for the three
// registries critest names, and nothing else.
const (
	criToolsRepo = "gcr.io/k8s-staging-cri-tools/"
	// The image the "same image from different registries" specs pull
	// from both; a stand-in with its own content, so that removing it by
	// id never removes the pinned sandbox image (imagePause).
	imagePause39    = "registry.k8s.io/pause:3.9"
	imagePause39Old = "k8s.gcr.io/pause:3.9"
)

// registryHosts are the registries critest pulls from; each gets a
// hosts.toml whose only host is the test's registry.
var registryHosts = []string{"gcr.io", "registry.k8s.io", "k8s.gcr.io"}

// registryImages are the images the registry serves, as cri-tools'
// images/build makes them: busybox plus a file named after the image or
// tag (image-test), busybox with a USER (image-user), and pause.
// test-image-digest is not among them: critest pulls it by the digest of
// the upstream image (consts.go testLinuxImageWithDigest), which no locally
// built image can have; its spec is skipped (critest-deviations.toml,
// [[offline]]).
func registryImages(base []byte, pauseLayer []byte) ([]imageDef, error) {
	env := []string{defaultPath}
	var out []imageDef
	marker := func(name string) ([]byte, error) {
		return layer([]file{reg("/"+name, 0o644, nil)})
	}
	add := func(names []string, markerFile string) error {
		l, err := marker(markerFile)
		if err != nil {
			return err
		}
		for _, n := range names {
			out = append(out, imageDef{Name: n, Layers: [][]byte{base, l},
				Config: ocispec.ImageConfig{Env: env, Cmd: []string{"sh"}}})
		}
		return nil
	}
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest"} {
		if err := add([]string{criToolsRepo + n + ":latest"}, n); err != nil {
			return nil, err
		}
	}
	// One image, three tags.
	if err := add([]string{criToolsRepo + "test-image-tags:1", criToolsRepo + "test-image-tags:2", criToolsRepo + "test-image-tags:3"}, "same-image"); err != nil {
		return nil, err
	}
	for _, tag := range []string{"test", "all"} {
		if err := add([]string{criToolsRepo + "test-image-tag:" + tag}, tag); err != nil {
			return nil, err
		}
	}
	for name, user := range map[string]string{
		"test-image-user-uid":            "1002",
		"test-image-user-username":       "www-data",
		"test-image-user-uid-group":      "1003:1004",
		"test-image-user-username-group": "www-data:1004",
	} {
		out = append(out, imageDef{Name: criToolsRepo + name + ":latest", Layers: [][]byte{base},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"sh"}, User: user}})
	}
	// Both names, one manifest: the same image in two registries.
	for _, n := range []string{imagePause39, imagePause39Old} {
		out = append(out, imageDef{Name: n, Layers: [][]byte{pauseLayer},
			Config: ocispec.ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535", WorkingDir: "/",
				Labels: map[string]string{"hardened.test/stand-in": "registry.k8s.io/pause:3.9"}}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// registry is the pull side of the OCI distribution API, read-only, from
// memory: manifests by tag or digest, blobs by digest (GET and HEAD). A
// request is looked up by the registry it was meant for (containerd names
// it in the "ns" query parameter when it asks a mirror) and the
// repository path, so a name critest did not use is a 404.
type registry struct {
	Addr string // 127.0.0.1:PORT inside the network namespace

	srv  *http.Server
	tags map[string]digest.Digest // "gcr.io/k8s-staging-cri-tools/test-image-tag:test" -> manifest
	// manifests and blobs by repository ("gcr.io/...") so that a blob is
	// only served from a repository whose images hold it.
	manifests map[string]map[digest.Digest][]byte
	blobs     map[string]map[digest.Digest][]byte

	mu   sync.Mutex
	hits map[string]int // "GET /v2/..." -> count, for the log
}

// startRegistry listens on 127.0.0.1 in the network namespace at nsPath and
// serves images.
func startRegistry(nsPath string, images []imageDef) (*registry, error) {
	r, err := newRegistry(images)
	if err != nil {
		return nil, err
	}
	ln, err := listenInNetNS(nsPath, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.Addr = ln.Addr().String()
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// newRegistry indexes the images' manifests and blobs by repository.
func newRegistry(images []imageDef) (*registry, error) {
	blobs, manifests, err := imageBlobs(images)
	if err != nil {
		return nil, err
	}
	r := &registry{
		tags:      map[string]digest.Digest{},
		manifests: map[string]map[digest.Digest][]byte{},
		blobs:     map[string]map[digest.Digest][]byte{},
		hits:      map[string]int{},
	}
	for i, img := range images {
		repo, tag, ok := strings.Cut(img.Name, ":")
		if !ok || strings.Contains(tag, "/") {
			return nil, fmt.Errorf("registry: %q has no tag", img.Name)
		}
		m := manifests[i]
		r.tags[img.Name] = m.Digest
		if r.manifests[repo] == nil {
			r.manifests[repo], r.blobs[repo] = map[digest.Digest][]byte{}, map[digest.Digest][]byte{}
		}
		data := blobs[m.Digest]
		r.manifests[repo][m.Digest] = data
		var man ocispec.Manifest
		if err := json.Unmarshal(data, &man); err != nil {
			return nil, err
		}
		for _, d := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
			r.blobs[repo][d.Digest] = blobs[d.Digest]
		}
	}
	return r, nil
}

// listenInNetNS makes a listening socket in another network namespace: a
// socket stays in the namespace it was made in. The thread that entered
// the namespace is never unlocked, so the runtime ends it with the
// goroutine instead of running other goroutines in that namespace.
func listenInNetNS(nsPath, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(nsPath)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	res := <-ch
	return res.ln, res.err
}

func (r *registry) Close() error {
	if r == nil || r.srv == nil {
		return nil
	}
	return r.srv.Close()
}

// Hits returns the requests served, "METHOD path status" -> count.
func (r *registry) Hits() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.hits {
		out[k] = v
	}
	return out
}

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	status := r.serve(w, req)
	r.mu.Lock()
	r.hits[fmt.Sprintf("%s %s?ns=%s %d", req.Method, req.URL.Path, req.URL.Query().Get("ns"), status)]++
	r.mu.Unlock()
}

var errNotFound = errors.New("not found")

func (r *registry) serve(w http.ResponseWriter, req *http.Request) int {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	ns := req.URL.Query().Get("ns")
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok || ns == "" {
		return notFound(w)
	}
	var kind string
	var path, ref string
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(rest, k); i > 0 {
			kind, path, ref = k, rest[:i], rest[i+len(k):]
			break
		}
	}
	repo := ns + "/" + path
	var data []byte
	var mediaType string
	var err error = errNotFound
	switch kind {
	case "/manifests/":
		d := digest.Digest(ref)
		if d.Validate() != nil {
			d = r.tags[repo+":"+ref]
		}
		if m, ok := r.manifests[repo][d]; ok {
			data, mediaType, err = m, ocispec.MediaTypeImageManifest, nil
		}
	case "/blobs/":
		if b, ok := r.blobs[repo][digest.Digest(ref)]; ok {
			data, mediaType, err = b, "application/octet-stream", nil
		}
	}
	if err != nil {
		return notFound(w)
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(data).String())
	http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(data))
	return http.StatusOK
}

func notFound(w http.ResponseWriter) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"errors":[{"code":"NAME_UNKNOWN","message":"not served by the test registry"}]}`))
	return http.StatusNotFound
}

// hostsToml points containerd at the test's registry for one registry
// name: the registry itself is the server, there is no mirror to fall back
// on, so a pull of something the registry does not hold fails at once
// instead of going to the internet.
const hostsToml = `# integration/cri: the test's registry on 127.0.0.1 (in the pod network namespace)
server = "http://%[1]s"
`

// writeHostsDir writes dir/<registry>/hosts.toml for registryHosts.
func writeHostsDir(dir, addr string) error {
	for _, h := range registryHosts {
		d := filepath.Join(dir, h)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(fmt.Sprintf(hostsToml, addr)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// registryHostsDir is the temp dir's CRI registry config_path.
const registryHostsDir = "certs.d"

// startRegistry starts the registry in the network namespace with
// registryImages (made of the busybox and pause images' layers) and points
// containerd's hosts.toml at it.
func (e *Env) startRegistry(images []imageDef) error {
	var base, pause []byte
	for _, img := range images {
		switch img.Name {
		case imageBusybox:
			base = img.Layers[0]
		case imagePause:
			pause = img.Layers[0]
		}
	}
	if base == nil || pause == nil {
		return fmt.Errorf("registry: no %s or %s to build on", imageBusybox, imagePause)
	}
	served, err := registryImages(base, pause)
	if err != nil {
		return err
	}
	r, err := startRegistry("/var/run/netns/"+e.NetNS, served)
	if err != nil {
		return fmt.Errorf("failed to start the test registry: %w", err)
	}
	e.Registry = r
	return writeHostsDir(filepath.Join(e.Dir, registryHostsDir), r.Addr)
}

// TestRegistry checks the registry's answers the way containerd's resolver
// asks (critest's pulls through it are the end-to-end check): a tag and a
// digest resolve to the same manifest, blobs only in the repository whose
// image holds them, the registry named by "ns", 404 for anything else.
func TestRegistry(t *testing.T) {
	base, err := layer([]file{reg("/bin/sh", 0o755, []byte("sh"))})
	if err != nil {
		t.Fatal(err)
	}
	pause, err := layer([]file{reg("/pause", 0o755, []byte("pause"))})
	if err != nil {
		t.Fatal(err)
	}
	images, err := registryImages(base, pause)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRegistry(images)
	if err != nil {
		t.Fatal(err)
	}
	get := func(method, target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		return w
	}
	const tagPath = "/v2/k8s-staging-cri-tools/test-image-tag/manifests/test?ns=gcr.io"
	w := get(http.MethodHead, tagPath)
	dg := w.Header().Get("Docker-Content-Digest")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ocispec.MediaTypeImageManifest || dg == "" {
		t.Fatalf("HEAD %s: %d %v", tagPath, w.Code, w.Header())
	}
	byTag := get(http.MethodGet, tagPath).Body.Bytes()
	byDigest := get(http.MethodGet, "/v2/k8s-staging-cri-tools/test-image-tag/manifests/"+dg+"?ns=gcr.io")
	if byDigest.Code != http.StatusOK || !bytes.Equal(byDigest.Body.Bytes(), byTag) || digest.FromBytes(byTag).String() != dg {
		t.Fatalf("manifest by digest %s: %d, differs from by tag", dg, byDigest.Code)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(byTag, &man); err != nil {
		t.Fatal(err)
	}
	blob := "/v2/k8s-staging-cri-tools/test-image-tag/blobs/" + man.Layers[0].Digest.String() + "?ns=gcr.io"
	if w := get(http.MethodGet, blob); w.Code != http.StatusOK || digest.FromBytes(w.Body.Bytes()) != man.Layers[0].Digest {
		t.Errorf("GET %s: %d", blob, w.Code)
	}
	// The same image from two registries: one manifest.
	a := get(http.MethodHead, "/v2/pause/manifests/3.9?ns=registry.k8s.io").Header().Get("Docker-Content-Digest")
	b := get(http.MethodHead, "/v2/pause/manifests/3.9?ns=k8s.gcr.io").Header().Get("Docker-Content-Digest")
	if a == "" || a != b {
		t.Errorf("pause:3.9 from registry.k8s.io %q and k8s.gcr.io %q", a, b)
	}
	for _, target := range []string{
		"/v2/k8s-staging-cri-tools/test-image-tag/manifests/test",              // no ns
		"/v2/k8s-staging-cri-tools/test-image-tag/manifests/test?ns=docker.io", // another registry
		"/v2/k8s-staging-cri-tools/test-image-digest/manifests/sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf?ns=gcr.io",
		"/v2/k8s-staging-cri-tools/test-image-1/blobs/" + man.Config.Digest.String() + "?ns=gcr.io", // another image's config
		"/v2/pause/manifests/3.10-hardened-test?ns=registry.k8s.io",                                 // the sandbox image: imported, not served
	} {
		if w := get(http.MethodGet, target); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
		}
	}
	if w := get(http.MethodPut, tagPath); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d, want 405", w.Code)
	}
}
