package shim

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	"github.com/containerd/containerd/api/types"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// blobStore is content-addressed JSON blobs.
type blobStore map[digest.Digest][]byte

func (b blobStore) add(t *testing.T, mediaType string, v any, platform *ocispec.Platform) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	b[d] = data
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data)), Platform: platform}
}

func (b blobStore) read(_ context.Context, d ocispec.Descriptor) ([]byte, error) {
	data, ok := b[d.Digest]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "blob %s", d.Digest)
	}
	return data, nil
}

// image builds a multi-platform image whose amd64 config has labels; the
// other manifests' configs have other labels.
func image(t *testing.T, b blobStore, labels map[string]string) ocispec.Descriptor {
	t.Helper()
	manifest := func(arch string, l map[string]string) ocispec.Descriptor {
		cfg := b.add(t, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, Config: ocispec.ImageConfig{Labels: l}}, nil)
		return b.add(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}, &ocispec.Platform{OS: "linux", Architecture: arch})
	}
	arm := manifest("arm64", map[string]string{"which": "arm64"})
	host := manifest(platforms.DefaultSpec().Architecture, labels)
	attestation := b.add(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{Config: ocispec.Descriptor{MediaType: "application/vnd.in-toto+json", Digest: digest.FromString("attestation")}}, &ocispec.Platform{OS: "unknown", Architecture: "unknown"})
	return b.add(t, ocispec.MediaTypeImageIndex, ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{arm, attestation, host}}, nil)
}

func TestConfigLabels(t *testing.T) {
	b := blobStore{}
	want := map[string]string{"hardened.dev/profile": "strict", "which": "host"}
	idx := image(t, b, want)
	got, err := configLabels(context.Background(), b.read, idx, platforms.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got["which"] != "host" || got["hardened.dev/profile"] != "strict" {
		t.Errorf("labels %v, want the host platform's %v", got, want)
	}

	// A single-platform Docker manifest.
	cfg := b.add(t, "application/vnd.docker.container.image.v1+json", ocispec.Image{Config: ocispec.ImageConfig{Labels: map[string]string{"a": "b"}}}, nil)
	m := b.add(t, mediaTypeDockerManifest, ocispec.Manifest{Config: cfg}, nil)
	if got, err := configLabels(context.Background(), b.read, m, platforms.Default()); err != nil || got["a"] != "b" {
		t.Errorf("docker manifest: %v %v", got, err)
	}

	// No manifest for this platform, an unknown type, a missing blob.
	other := b.add(t, ocispec.MediaTypeImageIndex, ocispec.Index{Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: m.Digest, Size: m.Size, Platform: &ocispec.Platform{OS: "windows", Architecture: "arm"}},
	}}, nil)
	if _, err := configLabels(context.Background(), b.read, other, platforms.Default()); err == nil || !strings.Contains(err.Error(), "no manifest") {
		t.Errorf("index without our platform: %v", err)
	}
	if _, err := configLabels(context.Background(), b.read, ocispec.Descriptor{MediaType: "text/plain"}, platforms.Default()); err == nil {
		t.Error("unknown media type accepted")
	}
	if _, err := configLabels(context.Background(), b.read, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("x")}, platforms.Default()); err == nil {
		t.Error("missing blob accepted")
	}
}

// fakeContainerd serves the three services the shim reads, for one
// namespace.
type fakeContainerd struct {
	containers map[string]*containersapi.Container
	images     map[string]ocispec.Descriptor
	blobs      blobStore
	// nsLabels are the labels of namespace "test".
	nsLabels map[string]string
}

func checkNamespace(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if ns := md.Get("containerd-namespace"); len(ns) != 1 || ns[0] != "test" {
		return status.Errorf(codes.FailedPrecondition, "namespace %v", ns)
	}
	return nil
}

type namespacesServer struct {
	namespacesapi.UnimplementedNamespacesServer
	*fakeContainerd
}

func (f namespacesServer) Get(ctx context.Context, r *namespacesapi.GetNamespaceRequest) (*namespacesapi.GetNamespaceResponse, error) {
	if r.Name != "test" {
		return nil, status.Errorf(codes.NotFound, "namespace %s", r.Name)
	}
	return &namespacesapi.GetNamespaceResponse{Namespace: &namespacesapi.Namespace{Name: r.Name, Labels: f.nsLabels}}, nil
}

type containersServer struct {
	containersapi.UnimplementedContainersServer
	*fakeContainerd
}

func (f containersServer) Get(ctx context.Context, r *containersapi.GetContainerRequest) (*containersapi.GetContainerResponse, error) {
	if err := checkNamespace(ctx); err != nil {
		return nil, err
	}
	c, ok := f.containers[r.ID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q: not found", r.ID)
	}
	return &containersapi.GetContainerResponse{Container: c}, nil
}

type imagesServer struct {
	imagesapi.UnimplementedImagesServer
	*fakeContainerd
}

func (f imagesServer) Get(ctx context.Context, r *imagesapi.GetImageRequest) (*imagesapi.GetImageResponse, error) {
	if err := checkNamespace(ctx); err != nil {
		return nil, err
	}
	d, ok := f.images[r.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "image %q: not found", r.Name)
	}
	return &imagesapi.GetImageResponse{Image: &imagesapi.Image{Name: r.Name, Target: &types.Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size}}}, nil
}

type contentServer struct {
	contentapi.UnimplementedContentServer
	*fakeContainerd
}

func (f contentServer) Read(r *contentapi.ReadContentRequest, srv contentapi.Content_ReadServer) error {
	if err := checkNamespace(srv.Context()); err != nil {
		return err
	}
	data, ok := f.blobs[digest.Digest(r.Digest)]
	if !ok {
		return status.Errorf(codes.NotFound, "blob %s", r.Digest)
	}
	// Two chunks, as a real store may send.
	half := len(data) / 2
	for _, chunk := range [][]byte{data[:half], data[half:]} {
		if err := srv.Send(&contentapi.ReadContentResponse{Data: chunk}); err != nil {
			return err
		}
	}
	return nil
}

func serveFake(t *testing.T, f *fakeContainerd) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	containersapi.RegisterContainersServer(srv, containersServer{fakeContainerd: f})
	imagesapi.RegisterImagesServer(srv, imagesServer{fakeContainerd: f})
	contentapi.RegisterContentServer(srv, contentServer{fakeContainerd: f})
	namespacesapi.RegisterNamespacesServer(srv, namespacesServer{fakeContainerd: f})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return sock
}

func TestGRPCLabels(t *testing.T) {
	blobs := blobStore{}
	ropts := mustAny(t, &runtimeoptions.Options{ConfigPath: "/etc/hardened/policy.toml"})
	f := &fakeContainerd{
		blobs: blobs,
		containers: map[string]*containersapi.Container{
			"sb":      {ID: "sb", Labels: map[string]string{"team": "payments", "tier": "pod"}},
			"c":       {ID: "c", Image: "registry.test/app:1", Labels: map[string]string{"tier": "container"}, Runtime: &containersapi.Container_Runtime{Name: "io.containerd.hardened.v2", Options: ropts}},
			"noimage": {ID: "noimage"},
			"gone":    {ID: "gone", Image: "registry.test/deleted:1"},
		},
		images: map[string]ocispec.Descriptor{
			"registry.test/app:1": image(t, blobs, map[string]string{"hardened.dev/profile": "strict"}),
		},
		nsLabels: map[string]string{"hardened.dev/audit-profile": "strict"},
	}
	g := newGRPCLabels(serveFake(t, f))

	info, err := g.lookup(testCtx(), "c", "sb")
	if err != nil {
		t.Fatal(err)
	}
	if info.NamespaceLabels["hardened.dev/audit-profile"] != "strict" {
		t.Errorf("namespace labels %v", info.NamespaceLabels)
	}
	if info.Labels["team"] != "payments" || info.Labels["tier"] != "container" {
		t.Errorf("labels %v: want the sandbox's overlaid with the container's", info.Labels)
	}
	if info.ImageLabels["hardened.dev/profile"] != "strict" {
		t.Errorf("image labels %v", info.ImageLabels)
	}
	if src, err := splitOptions(info.RuntimeOptions); err != nil || src.Policy == nil || src.Policy.Path != "/etc/hardened/policy.toml" {
		t.Errorf("record's runtime options: %+v %v", src, err)
	}

	if info, err := g.lookup(testCtx(), "noimage", ""); err != nil || len(info.ImageLabels) != 0 {
		t.Errorf("container without image: %+v %v", info, err)
	}
	// Idle between Creates: no connection is kept (the lookups above each
	// dialed their own); concurrent lookups share one.
	if g.conn != nil || g.users != 0 {
		t.Errorf("after the lookups: conn %v, %d users; want none", g.conn, g.users)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.lookup(testCtx(), "c", "sb"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if g.conn != nil || g.users != 0 {
		t.Errorf("after concurrent lookups: conn %v, %d users; want none", g.conn, g.users)
	}
	// Fail closed: a record, a sandbox or an image that cannot be read.
	for _, tc := range []struct{ id, sandbox, want string }{
		{"missing", "", "missing"},
		{"c", "missing-sandbox", "pod sandbox"},
		{"gone", "", "registry.test/deleted:1"},
	} {
		if _, err := g.lookup(testCtx(), tc.id, tc.sandbox); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s: err %v, want one naming %q", tc.id, tc.sandbox, err, tc.want)
		}
	}

	// A containerd that is not there.
	dead := newGRPCLabels(filepath.Join(t.TempDir(), "nothing.sock"))
	ctx, cancel := context.WithTimeout(testCtx(), 3*time.Second)
	defer cancel()
	if _, err := dead.lookup(ctx, "c", ""); err == nil {
		t.Error("lookup against no containerd succeeded")
	}
}

// Real time, not testing/synctest: the connection is a real gRPC
// connection over a unix socket, which a synctest bubble cannot wait on;
// the polls are bounded by deadlines.
func TestGRPCLabelsWarm(t *testing.T) {
	f := &fakeContainerd{blobs: blobStore{}, containers: map[string]*containersapi.Container{"c": {ID: "c"}}}
	connOpen := func(g *grpcLabels) bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.conn != nil
	}
	waitClosed := func(t *testing.T, g *grpcLabels) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); connOpen(g); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the warm connection is never closed")
			}
		}
	}

	// The first lookup takes the warm connection over; once it is done,
	// nothing stays open.
	g := newGRPCLabels(serveFake(t, f))
	go g.warm()
	for !connOpen(g) {
		time.Sleep(time.Millisecond)
	}
	if _, err := g.lookup(testCtx(), "c", ""); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, g)

	// No Create comes: the connection is dropped after the hold.
	g = newGRPCLabels(serveFake(t, f))
	g.hold = 20 * time.Millisecond
	g.warm()
	if connOpen(g) {
		t.Error("warm returned with the connection still open")
	}

	// No containerd: warm gives up quietly, lookups still fail closed.
	g = newGRPCLabels(filepath.Join(t.TempDir(), "nothing.sock"))
	g.hold = 20 * time.Millisecond
	g.warm()
	ctx, cancel := context.WithTimeout(testCtx(), 2*time.Second)
	defer cancel()
	if _, err := g.lookup(ctx, "c", ""); err == nil {
		t.Error("lookup against no containerd succeeded")
	}
}
