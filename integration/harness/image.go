package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BusyboxPath is the static busybox the test images are made of (Debian
// package busybox-static).
const BusyboxPath = "/bin/busybox"

// Snapshotter is the snapshotter images are unpacked for.
const Snapshotter = "overlayfs"

// Label keys the shim reads.
const (
	LabelProfile      = "hardened.dev/profile"
	AnnotationProfile = "hardened.dev/profile"
	AnnotationRuntime = "hardened.dev/runtime"
)

// Image names built by DefaultImages.
const (
	// ImageBusybox: busybox, runs as root, no labels.
	ImageBusybox = "hardened.test/busybox:latest"
	// ImageStrict: the same layer, image config label
	// hardened.dev/profile=strict and User 1000:1000.
	ImageStrict = "hardened.test/busybox-strict:latest"
)

// ImageSpec describes one image of the layout: all share the busybox layer.
type ImageSpec struct {
	Name   string
	Labels map[string]string
	User   string
	Cmd    []string
	// Files, by path, go in a second layer (mode 0644, their directories
	// 0755), owned by Owner (uid = gid).
	Files map[string]string
	Owner int
}

// filesLayer is an uncompressed layer tar holding files and their parent
// directories, owned by uid.
func filesLayer(files map[string]string, uid int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		parts := strings.Split(strings.Trim(n, "/"), "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, Uid: uid, Gid: uid, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		data := []byte(files[n])
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.Trim(n, "/"), Mode: 0o644, Uid: uid, Gid: uid, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DefaultImages are the images every test environment imports.
func DefaultImages() []ImageSpec {
	return []ImageSpec{
		{Name: ImageBusybox, Cmd: []string{"/bin/sh"}},
		{Name: ImageStrict, Cmd: []string{"/bin/sh"}, User: "1000:1000",
			Labels: map[string]string{LabelProfile: "strict"}},
	}
}

// epoch keeps the layer and configs byte-identical between runs.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxLayer returns an uncompressed layer tar: a static busybox in /bin
// with every applet as a HARD link to it (a symlinked applet breaks masked
// paths such as CRI's masking of a single binary), /etc/passwd and
// /etc/group with root and user 1000, and the usual top-level directories.
func BusyboxLayer() ([]byte, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s (install busybox-static): %w", BusyboxPath, err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("failed to list busybox applets: %w", err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode,
			Uid: uid, Gid: uid, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode,
			Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
		uid  int
	}{
		{"bin", 0o755, 0}, {"dev", 0o755, 0}, {"etc", 0o755, 0}, {"home", 0o755, 0},
		{"home/user", 0o755, 1000}, {"proc", 0o555, 0}, {"root", 0o700, 0}, {"run", 0o755, 0},
		{"sys", 0o555, 0}, {"tmp", 0o1777, 0}, {"usr", 0o755, 0}, {"usr/bin", 0o755, 0},
		{"var", 0o755, 0}, {"var/tmp", 0o1777, 0},
	} {
		if err := dir(d.name, d.mode, d.uid); err != nil {
			return nil, err
		}
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "bin/" + a, Linkname: "bin/busybox",
			Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
		"etc/hosts":  "127.0.0.1 localhost\n",
	}
	for _, name := range []string{"etc/group", "etc/hosts", "etc/passwd"} {
		if err := file(name, 0o644, []byte(files[name])); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout writes an OCI image layout as a tar stream (oci-layout,
// index.json, blobs/sha256/...) holding one manifest per ImageSpec, all
// over the same busybox layer. index.json names each manifest with
// io.containerd.image.name (the full reference) and
// org.opencontainers.image.ref.name (its tag). (Long on purpose: it writes
// the layout's files in the order the OCI image layout lists them.)
func WriteLayout(w io.Writer, imgs []ImageSpec) error {
	layer, err := BusyboxLayer()
	if err != nil {
		return err
	}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	blobs := map[digest.Digest][]byte{layerDesc.Digest: layer}
	platform := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	index := ocispec.Index{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, img := range imgs {
		layers := []ocispec.Descriptor{layerDesc}
		if len(img.Files) > 0 {
			extra, err := filesLayer(img.Files, img.Owner)
			if err != nil {
				return err
			}
			d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(extra), Size: int64(len(extra))}
			blobs[d.Digest] = extra
			layers = append(layers, d)
		}
		var diffIDs []digest.Digest
		for _, l := range layers {
			diffIDs = append(diffIDs, l.Digest)
		}
		created := epoch
		cfg := ocispec.Image{
			Created:  &created,
			Platform: *platform,
			Config: ocispec.ImageConfig{
				Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
				Cmd:        img.Cmd,
				WorkingDir: "/",
				Labels:     img.Labels,
				User:       img.User,
			},
			RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
			History: []ocispec.History{{Created: &created, CreatedBy: "integration/harness: static busybox, hard-linked applets"}},
		}
		if len(layers) > 1 {
			cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "integration/harness: the image's files"})
		}
		cfgJSON, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
		blobs[cfgDesc.Digest] = cfgJSON
		man := ocispec.Manifest{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: cfgDesc, Layers: layers}
		manJSON, err := json.Marshal(man)
		if err != nil {
			return err
		}
		manDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manJSON),
			Size: int64(len(manJSON)), Platform: platform}
		blobs[manDesc.Digest] = manJSON
		tag := "latest"
		if i := strings.LastIndex(img.Name, ":"); i > strings.LastIndex(img.Name, "/") {
			tag = img.Name[i+1:]
		}
		manDesc.Annotations = map[string]string{
			"io.containerd.image.name":         img.Name,
			ocispec.AnnotationRefName:          tag,
			"org.opencontainers.image.created": epoch.Format(time.RFC3339),
		}
		index.Manifests = append(index.Manifests, manDesc)
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	if err := put(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
		return err
	}
	var dgsts []string
	for d := range blobs {
		dgsts = append(dgsts, string(d))
	}
	sort.Strings(dgsts)
	for _, d := range dgsts {
		if err := put("blobs/sha256/"+digest.Digest(d).Encoded(), blobs[digest.Digest(d)]); err != nil {
			return err
		}
	}
	if err := put(ocispec.ImageIndexFile, indexJSON); err != nil {
		return err
	}
	return tw.Close()
}

// ImportImages imports the images into namespace ns (client.Import of an
// OCI layout tar written by WriteLayout) and unpacks them for the
// overlayfs snapshotter.
func (d *Daemon) ImportImages(ctx context.Context, ns string, imgs []ImageSpec) error {
	ctx = Context(ctx, ns)
	var buf bytes.Buffer
	if err := WriteLayout(&buf, imgs); err != nil {
		return fmt.Errorf("failed to write the OCI layout: %w", err)
	}
	imported, err := d.Client.Import(ctx, &buf)
	if err != nil {
		return fmt.Errorf("failed to import the OCI layout: %w", err)
	}
	if len(imported) != len(imgs) {
		return fmt.Errorf("imported %d images, want %d", len(imported), len(imgs))
	}
	for _, img := range imported {
		if err := client.NewImage(d.Client, img).Unpack(ctx, Snapshotter); err != nil {
			return fmt.Errorf("failed to unpack %s: %w", img.Name, err)
		}
	}
	return nil
}
