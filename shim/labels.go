package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-dev/hardened/internal/decide"
)

// Labels.
//
// Pod labels never reach the OCI spec, and image config labels only through
// what the client copied. The shim reads them from containerd: the
// container's record (its labels, its image, its runtime options), for a
// CRI container also the pod sandbox's record (where CRI puts the pod's
// labels), and the image's config blob. It uses containerd's raw API
// clients, not the containerd client package, to keep the shim small, over
// a connection that lives as long as the lookups using it.

// containerInfo is what the shim reads from containerd for one container.
type containerInfo struct {
	// Labels are the sandbox record's labels overlaid with the container
	// record's.
	Labels map[string]string
	// ImageLabels are the image config's labels (none for a container
	// without an image).
	ImageLabels map[string]string
	// RuntimeOptions are the container record's runtime options: the policy
	// source when the task's own options were runc options.
	RuntimeOptions *anypb.Any
	// CRI is what containerd's CRI recorded about the container (its
	// record's kind label and metadata extension), or the zero value for a
	// container CRI did not create. Unlike the spec's annotations, NRI
	// plugins and CDI specs cannot change it.
	CRI decide.CRIRecord
	// NamespaceLabels are the labels of the container's containerd
	// namespace (the operator's).
	NamespaceLabels map[string]string
}

// CRI's record keys (containerd internal/cri/labels).
const (
	criKindLabel         = "io.cri-containerd.kind"
	criContainerMetadata = "io.cri-containerd.container.metadata"
)

// readCRIRecord reads the CRI kind and sandbox of a container record. The
// metadata extension is JSON (a typeurl JSON type):
// {"Version": "v1", "Metadata": {"SandboxID": ...}}.
func readCRIRecord(c *containersapi.Container) (decide.CRIRecord, error) {
	r := decide.CRIRecord{Kind: c.GetLabels()[criKindLabel]}
	if ext := c.GetExtensions()[criContainerMetadata]; ext != nil {
		var m struct {
			Metadata struct{ SandboxID string }
		}
		if err := json.Unmarshal(ext.GetValue(), &m); err != nil {
			return r, fmt.Errorf("failed to read the CRI metadata of container %s: %w", c.GetID(), err)
		}
		r.SandboxID = m.Metadata.SandboxID
	}
	return r, nil
}

// labelSource looks containers up in containerd.
type labelSource interface {
	lookup(ctx context.Context, id, sandboxID string) (*containerInfo, error)
}

// lookupTimeout bounds the whole lookup for one Create.
const lookupTimeout = 10 * time.Second

// maxBlobSize bounds the manifests and configs the shim reads.
const maxBlobSize = 4 << 20

// grpcLabels reads from containerd's gRPC API.
type grpcLabels struct {
	address  string
	platform platforms.MatchComparer

	mu    sync.Mutex
	conn  *grpc.ClientConn
	users int // lookups in flight on conn (and warm, until the first)

	looked     chan struct{} // closed by the first lookup
	lookedOnce sync.Once
	hold       time.Duration // warmHold
}

func newGRPCLabels(address string) *grpcLabels {
	return &grpcLabels{address: address, platform: platforms.Default(), looked: make(chan struct{}), hold: warmHold}
}

// acquire returns the connection to containerd, dialing it if there is
// none; release hands it back. The last lookup in flight closes it: a
// shim spends its life idle between Creates (one per container of its
// pod), and an open gRPC connection keeps an HTTP/2 transport, its
// buffers and goroutines for nothing (about 0.3 MB of the shim's ~5 MB of
// private memory). Concurrent Creates share one connection; the next
// Create dials again (a unix socket: about a millisecond).
func (g *grpcLabels) acquire() (*grpc.ClientConn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		target := g.address
		if !strings.Contains(target, "://") {
			target = "unix://" + target
		}
		conn, err := grpc.NewClient(target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
		)
		if err != nil {
			return nil, err
		}
		g.conn = conn
	}
	g.users++
	return g.conn, nil
}

func (g *grpcLabels) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.users--; g.users == 0 && g.conn != nil {
		_ = g.conn.Close()
		g.conn = nil
	}
}

// warmHold bounds how long warm keeps its connection for a Create that
// does not come.
const warmHold = 10 * time.Second

// warm gets the first lookup's cold costs out of its way (see
// warm.go): it dials containerd and initialises the protobuf types of
// the lookup's messages, and holds the connection until the first lookup
// has taken it over (or warmHold passed).
func (g *grpcLabels) warm() {
	conn, err := g.acquire()
	if err != nil {
		return
	}
	conn.Connect()
	for _, m := range []proto.Message{
		&containersapi.GetContainerRequest{}, &containersapi.GetContainerResponse{Container: &containersapi.Container{Runtime: &containersapi.Container_Runtime{}}},
		&imagesapi.GetImageRequest{}, &imagesapi.GetImageResponse{Image: &imagesapi.Image{Target: &types.Descriptor{}}},
		&contentapi.ReadContentRequest{}, &contentapi.ReadContentResponse{},
	} {
		if b, err := proto.Marshal(m); err == nil {
			_ = proto.Unmarshal(b, m)
		}
	}
	select {
	case <-g.looked:
	case <-time.After(g.hold):
	}
	g.release()
}

func (g *grpcLabels) lookup(ctx context.Context, id, sandboxID string) (*containerInfo, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := g.acquire()
	if err != nil {
		return nil, fmt.Errorf("failed to connect to containerd at %s: %w", g.address, err)
	}
	g.lookedOnce.Do(func() { close(g.looked) })
	defer g.release()
	// Exactly one namespace header, whatever the caller's context carries.
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs(namespaces.GRPCHeader, ns))
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()

	// The namespace's labels, read while the container record is.
	type nsLabels struct {
		labels map[string]string
		err    error
	}
	nsDone := make(chan nsLabels, 1)
	go func() {
		resp, err := namespacesapi.NewNamespacesClient(conn).Get(ctx, &namespacesapi.GetNamespaceRequest{Name: ns})
		nsDone <- nsLabels{resp.GetNamespace().GetLabels(), err}
	}()
	containers := containersapi.NewContainersClient(conn)
	c, err := getContainer(ctx, containers, id)
	nsl := <-nsDone
	if err != nil {
		return nil, err
	}
	if nsl.err != nil {
		return nil, fmt.Errorf("failed to read namespace %s: %w", ns, errgrpc.ToNative(nsl.err))
	}
	info := &containerInfo{Labels: map[string]string{}, RuntimeOptions: c.GetRuntime().GetOptions(), NamespaceLabels: nsl.labels}
	if info.CRI, err = readCRIRecord(c); err != nil {
		return nil, err
	}
	if sandboxID != "" {
		sb, err := getContainer(ctx, containers, sandboxID)
		if err != nil {
			return nil, fmt.Errorf("pod sandbox: %w", err)
		}
		for k, v := range sb.GetLabels() {
			info.Labels[k] = v
		}
	}
	for k, v := range c.GetLabels() {
		info.Labels[k] = v
	}
	if c.GetImage() != "" {
		info.ImageLabels, err = g.imageLabels(ctx, conn, c.GetImage())
		if err != nil {
			return nil, fmt.Errorf("image %s of container %s: %w", c.GetImage(), id, err)
		}
	}
	return info, nil
}

func getContainer(ctx context.Context, client containersapi.ContainersClient, id string) (*containersapi.Container, error) {
	resp, err := client.Get(ctx, &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		return nil, fmt.Errorf("failed to get container record %s: %w", id, errgrpc.ToNative(err))
	}
	return resp.GetContainer(), nil
}

// imageLabels follows the image's target (an index to the manifest for
// the node's platform, the manifest to its config) and returns the
// config's labels.
func (g *grpcLabels) imageLabels(ctx context.Context, conn *grpc.ClientConn, name string) (map[string]string, error) {
	resp, err := imagesapi.NewImagesClient(conn).Get(ctx, &imagesapi.GetImageRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("failed to get image: %w", errgrpc.ToNative(err))
	}
	t := resp.GetImage().GetTarget()
	if t == nil {
		return nil, errors.New("image has no target")
	}
	content := contentapi.NewContentClient(conn)
	desc := ocispec.Descriptor{MediaType: t.GetMediaType(), Digest: digest.Digest(t.GetDigest()), Size: t.GetSize()}
	return configLabels(ctx, func(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
		return readBlob(ctx, content, d)
	}, desc, g.platform)
}

type blobReader func(ctx context.Context, d ocispec.Descriptor) ([]byte, error)

// configLabels walks from desc to the image config and returns its labels.
func configLabels(ctx context.Context, read blobReader, desc ocispec.Descriptor, platform platforms.MatchComparer) (map[string]string, error) {
	for depth := 0; depth < 4; depth++ {
		switch desc.MediaType {
		case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
			data, err := read(ctx, desc)
			if err != nil {
				return nil, err
			}
			var idx ocispec.Index
			if err := json.Unmarshal(data, &idx); err != nil {
				return nil, fmt.Errorf("failed to parse index %s: %w", desc.Digest, err)
			}
			var found *ocispec.Descriptor
			for i, m := range idx.Manifests {
				if m.Platform != nil && !platform.Match(*m.Platform) {
					continue
				}
				if m.Platform == nil && !isManifestType(m.MediaType) {
					continue
				}
				if found == nil || (m.Platform != nil && found.Platform != nil && platform.Less(*m.Platform, *found.Platform)) {
					found = &idx.Manifests[i]
				}
			}
			if found == nil {
				return nil, fmt.Errorf("index %s has no manifest for %s", desc.Digest, platforms.DefaultString())
			}
			desc = *found
		case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
			data, err := read(ctx, desc)
			if err != nil {
				return nil, err
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, fmt.Errorf("failed to parse manifest %s: %w", desc.Digest, err)
			}
			data, err = read(ctx, m.Config)
			if err != nil {
				return nil, err
			}
			var img ocispec.Image
			if err := json.Unmarshal(data, &img); err != nil {
				return nil, fmt.Errorf("failed to parse image config %s: %w", m.Config.Digest, err)
			}
			return img.Config.Labels, nil
		default:
			return nil, fmt.Errorf("unsupported image media type %q", desc.MediaType)
		}
	}
	return nil, errors.New("image indexes nested too deep")
}

const (
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
)

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

func readBlob(ctx context.Context, client contentapi.ContentClient, d ocispec.Descriptor) ([]byte, error) {
	if d.Size > maxBlobSize {
		return nil, fmt.Errorf("blob %s is %d bytes, more than the %d the shim reads", d.Digest, d.Size, maxBlobSize)
	}
	stream, err := client.Read(ctx, &contentapi.ReadContentRequest{Digest: d.Digest.String()})
	if err != nil {
		return nil, fmt.Errorf("failed to read blob %s: %w", d.Digest, errgrpc.ToNative(err))
	}
	var buf []byte
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read blob %s: %w", d.Digest, errgrpc.ToNative(err))
		}
		buf = append(buf, resp.GetData()...)
		if len(buf) > maxBlobSize {
			return nil, fmt.Errorf("blob %s is larger than %d bytes", d.Digest, maxBlobSize)
		}
	}
	return buf, nil
}
