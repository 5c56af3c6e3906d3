// Command installer-image builds the node installer's container image
// without Docker or any registry: an OCI image layout, written as one tar
// (an "oci-archive"), that `ctr images import` loads and `skopeo copy
// oci-archive:FILE docker://REF` pushes.
//
// Two gzip layers:
//  1. busybox (Debian's busybox-static: /bin/busybox and a hard link per
//     applet, as its --list-full names them), /etc/passwd and /etc/group
//     (root and nobody), /tmp;
//  2. the static binaries (make build-static: the shim, hardened-runsc,
//     hardenctl; and runsc) in /opt/hardened/bin and install.sh as
//     /usr/local/bin/hardened-install.
//
// The build is reproducible: every time stamp is SOURCE_DATE_EPOCH, files
// are in a fixed order, gzip output is deterministic; the same inputs give
// the same image digest. The binaries run on the node, not in the image
// (install.sh copies them to the host), which is why they are static.
//
//	go run ./hack/installer-image -bin dist/bin -runsc .tools/bin/runsc \
//	    -name ghcr.io/hardened-dev/hardened-installer:v0.2.0 -o installer.oci.tar
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest needs it registered
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// binaries go from -bin into /opt/hardened/bin.
var binaries = []string{"containerd-shim-hardened-v2", "hardened-runsc", "hardenctl"}

func main() {
	var (
		binDir    = flag.String("bin", "dist/bin", "directory with the static binaries (make build-static)")
		runsc     = flag.String("runsc", ".tools/bin/runsc", "runsc (static)")
		busybox   = flag.String("busybox", "/bin/busybox", "a static busybox (Debian package busybox-static)")
		installSh = flag.String("install-sh", "deploy/installer/install.sh", "the installer script")
		name      = flag.String("name", "", "the image reference, e.g. ghcr.io/hardened-dev/hardened-installer:v0.2.0")
		version   = flag.String("version", "", "org.opencontainers.image.version (default: the reference's tag)")
		revision  = flag.String("revision", "", "org.opencontainers.image.revision (the git commit)")
		out       = flag.String("o", "", "the oci-archive to write")
	)
	flag.Parse()
	if *name == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: installer-image -name REF -o FILE [-bin DIR] [-runsc FILE] [-busybox FILE] [-install-sh FILE]")
		os.Exit(2)
	}
	epoch := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fatal(fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err))
		}
		epoch = time.Unix(n, 0).UTC()
	}
	tag := tagOf(*name)
	if *version == "" {
		*version = tag
	}
	b := builder{epoch: epoch}
	base, err := b.busyboxLayer(*busybox)
	if err != nil {
		fatal(err)
	}
	bins := map[string]string{"/usr/local/bin/hardened-install": *installSh, "/opt/hardened/bin/runsc": *runsc}
	for _, n := range binaries {
		bins["/opt/hardened/bin/"+n] = filepath.Join(*binDir, n)
	}
	for dst, src := range bins {
		if err := mustBeStatic(src, dst); err != nil {
			fatal(err)
		}
	}
	top, err := b.filesLayer(bins)
	if err != nil {
		fatal(err)
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "hardened-installer",
		"org.opencontainers.image.description": "Installs the hardened containerd shim on a Kubernetes node (deploy/base)",
		"org.opencontainers.image.source":      "https://github.com/hardened-dev/hardened",
		"org.opencontainers.image.version":     *version,
		"org.opencontainers.image.created":     epoch.Format(time.RFC3339),
	}
	if *revision != "" {
		labels["org.opencontainers.image.revision"] = *revision
	}
	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Entrypoint: []string{"/usr/local/bin/hardened-install"},
			Cmd:        []string{"install"},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{base.diffID, top.diffID}},
		History: []ocispec.History{
			{Created: &epoch, CreatedBy: "hack/installer-image: busybox-static, hard-linked applets, /etc/passwd, /tmp"},
			{Created: &epoch, CreatedBy: "hack/installer-image: static shim, hardened-runsc, hardenctl, runsc; install.sh"},
		},
	}
	if err := writeArchive(*out, *name, tag, epoch, cfg, []layer{base, top}); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "installer-image:", err)
	os.Exit(1)
}

// tagOf returns the tag of a reference ("latest" when it has none).
func tagOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

// mustBeStatic refuses a dynamically linked ELF binary (one with a
// PT_INTERP program header): it would run on the node against the node's
// libc (or none). Scripts pass.
func mustBeStatic(src, dst string) error {
	f, err := elf.Open(src)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil // not ELF: a script
		}
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s (for %s) is dynamically linked: build it with make build-static", src, dst)
		}
	}
	return nil
}

type builder struct{ epoch time.Time }

// layer is a gzip-compressed layer tar and its uncompressed digest.
type layer struct {
	data   []byte
	diffID digest.Digest
}

// entry is one file of a layer.
type entry struct {
	name     string
	mode     int64
	typ      byte
	data     []byte
	linkname string
}

// build writes entries (parents first) into a gzip layer.
func (b builder) build(entries []entry) (layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{
			Name: strings.TrimPrefix(e.name, "/"), Mode: e.mode, Typeflag: e.typ, Linkname: strings.TrimPrefix(e.linkname, "/"),
			ModTime: b.epoch, Format: tar.FormatPAX, Uname: "root", Gname: "root",
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return layer{}, err
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return layer{}, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return layer{}, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return layer{}, err
	}
	zw.ModTime = b.epoch
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return layer{}, err
	}
	if err := zw.Close(); err != nil {
		return layer{}, err
	}
	return layer{data: gz.Bytes(), diffID: digest.FromBytes(raw.Bytes())}, nil
}

// dirs returns directory entries for every parent of paths, sorted.
func dirs(paths []string) []entry {
	seen := map[string]bool{}
	for _, p := range paths {
		for d := path.Dir(p); d != "/" && !seen[d]; d = path.Dir(d) {
			seen[d] = true
		}
	}
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	var es []entry
	for _, d := range out {
		es = append(es, entry{name: d + "/", mode: 0o755, typ: tar.TypeDir})
	}
	return es
}

// busyboxLayer: /bin/busybox, a hard link to it for each applet, the
// account files, /tmp.
func (b builder) busyboxLayer(busybox string) (layer, error) {
	data, err := os.ReadFile(busybox)
	if err != nil {
		return layer{}, err
	}
	if err := mustBeStatic(busybox, "/bin/busybox"); err != nil {
		return layer{}, err
	}
	list, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return layer{}, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(list)) {
		if a = "/" + strings.TrimPrefix(a, "/"); a != "/bin/busybox" {
			applets = append(applets, a)
		}
	}
	sort.Strings(applets)
	if len(applets) == 0 {
		return layer{}, errors.New("busybox lists no applets")
	}
	files := map[string][]byte{
		"/etc/passwd": []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		"/etc/group":  []byte("root:x:0:\nnogroup:x:65534:\n"),
	}
	all := append([]string{"/bin/busybox", "/etc/passwd", "/etc/group"}, applets...)
	es := dirs(all)
	es = append(es, entry{name: "/tmp/", mode: 0o1777, typ: tar.TypeDir}, entry{name: "/root/", mode: 0o700, typ: tar.TypeDir})
	es = append(es, entry{name: "/bin/busybox", mode: 0o755, typ: tar.TypeReg, data: data})
	for _, f := range []string{"/etc/group", "/etc/passwd"} {
		es = append(es, entry{name: f, mode: 0o644, typ: tar.TypeReg, data: files[f]})
	}
	// A hard link's mode must be its target's: containerd's applier
	// chmods the (shared) inode to the link entry's mode.
	for _, a := range applets {
		es = append(es, entry{name: a, mode: 0o755, typ: tar.TypeLink, linkname: "/bin/busybox"})
	}
	return b.build(es)
}

// filesLayer: the files of srcs (image path -> host path), executable.
func (b builder) filesLayer(srcs map[string]string) (layer, error) {
	var names []string
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	es := dirs(names)
	for _, n := range names {
		data, err := os.ReadFile(srcs[n])
		if err != nil {
			return layer{}, err
		}
		es = append(es, entry{name: n, mode: 0o755, typ: tar.TypeReg, data: data})
	}
	return b.build(es)
}

// writeArchive writes the OCI image layout as a tar: oci-layout, the blobs,
// index.json naming the manifest by its full reference
// (io.containerd.image.name, which ctr images import uses) and its tag
// (org.opencontainers.image.ref.name, which skopeo's oci-archive: uses).
func writeArchive(out, name, tag string, epoch time.Time, cfg ocispec.Image, layers []layer) error {
	blobs := map[digest.Digest][]byte{}
	var descs []ocispec.Descriptor
	for _, l := range layers {
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(l.data), Size: int64(len(l.data))}
		blobs[d.Digest] = l.data
		descs = append(descs, d)
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
	blobs[cfgDesc.Digest] = cfgJSON
	man := ocispec.Manifest{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: descs,
		Annotations: map[string]string{ocispec.AnnotationCreated: epoch.Format(time.RFC3339)}}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}
	manDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manJSON), Size: int64(len(manJSON)),
		Platform: &cfg.Platform,
		Annotations: map[string]string{
			"io.containerd.image.name": name,
			ocispec.AnnotationRefName:  tag,
		}}
	blobs[manDesc.Digest] = manJSON
	index := ocispec.Index{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{manDesc}}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}

	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(out + ".tmp")
	tw := tar.NewWriter(f)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := put(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
		return err
	}
	var ds []string
	for d := range blobs {
		ds = append(ds, string(d))
	}
	sort.Strings(ds)
	for _, d := range ds {
		if err := put("blobs/sha256/"+digest.Digest(d).Encoded(), blobs[digest.Digest(d)]); err != nil {
			return err
		}
	}
	if err := put(ocispec.ImageIndexFile, indexJSON); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("%s %s (manifest %s)\n", out, name, manDesc.Digest)
	return os.Rename(out+".tmp", out)
}
