//go:build integration

package cri

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image names. critest pulls an image only when it is missing, so the ones
// it uses are built here under the exact names of cri-tools v1.36.0
// (pkg/framework/util.go, pkg/validate/*.go), with the content its specs
// look for.
const (
	// Our own sandbox image (CRI pinned_images.sandbox).
	imagePause = "registry.k8s.io/pause:3.10-hardened-test"
	// framework.DefaultLinuxContainerImage: busybox with the applets as
	// hard links (a masked /bin/ls must not mask the shell), /etc/passwd
	// with "nobody", plus ipcs and pgrep.
	imageBusybox = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	// Security Context NamespaceOption specs: "pidof nginx", /var/run/nginx.pid,
	// "master process" in /proc/1/cmdline.
	imageNginx = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
	// Multiple Containers specs: serves :80, logs a line naming httpd.
	imageHttpd = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"
	// NoNewPrivs specs: a setuid-root program printing "Effective uid: N".
	imageNoNewPrivs = "registry.k8s.io/e2e-test-images/nonewprivs:1.3"
	// SupplementalGroupsPolicy specs: user default-user (1000) in group
	// group-defined-in-image (50000), USER 1000.
	imagePredefinedGroup = "gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest"
	// Streaming's host-network port-forward spec: a web server on :12003
	// (cri-tools images/hostnet-nginx: nginx with listen 12003), here
	// busybox's httpd.
	imageHostnetNginx = "gcr.io/k8s-staging-cri-tools/hostnet-nginx-" + runtime.GOARCH + ":latest"
)

// busyboxDynamic is Debian's dynamically linked busybox, unpacked by
// hack/install-cri-tools.sh into the tools dir. Not busybox-static: that one
// is a "standalone shell" that runs applets without exec, so critest's
// MaskedPaths spec (mask /bin/ls, expect `sh -c ls` to be denied) could not
// pass. The libraries it links are copied from the host into the image.
const busyboxDynamic = "busybox-dynamic"

// file is one entry of a layer.
type file struct {
	Name     string // absolute path in the image
	Mode     int64  // permission bits (and setuid)
	Type     byte   // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink
	Data     []byte
	Linkname string
	UID, GID int
}

// layer builds an uncompressed tar layer. Entries are written in the order
// given; parents must come first.
func layer(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, f := range files {
		h := &tar.Header{
			Name:     strings.TrimPrefix(f.Name, "/"),
			Mode:     f.Mode,
			Uid:      f.UID,
			Gid:      f.GID,
			ModTime:  mtime,
			Typeflag: f.Type,
			Linkname: f.Linkname,
			Format:   tar.FormatPAX,
		}
		switch f.Type {
		case 0, tar.TypeReg:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Data))
		case tar.TypeDir:
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func dir(name string, mode int64) file { return file{Name: name, Mode: mode, Type: tar.TypeDir} }
func reg(name string, mode int64, data []byte) file {
	return file{Name: name, Mode: mode, Type: tar.TypeReg, Data: data}
}

const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
`

// sharedLibs returns the files (path in the image -> content) of the
// shared libraries and loader a dynamic executable needs, from ldd.
func sharedLibs(exe string) (map[string][]byte, error) {
	out, err := exec.Command("ldd", exe).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", exe, err)
	}
	libs := map[string][]byte{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		var p string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			p = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			p = f[0]
		default:
			continue
		}
		data, err := os.ReadFile(p) // follows symlinks
		if err != nil {
			return nil, err
		}
		libs[p] = data
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s: no libraries (not a dynamic executable?)", exe)
	}
	return libs, nil
}

// busyboxLayer is the base of every image but pause: /bin/busybox (Debian's
// dynamic one and its libraries), every applet a hard link to it, ipcs and
// pgrep from testbin.
func busyboxLayer(busybox string, testbin []byte) ([]byte, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	libs, err := sharedLibs(busybox)
	if err != nil {
		return nil, err
	}
	files := []file{
		dir("/bin", 0o755), dir("/dev", 0o755), dir("/etc", 0o755), dir("/home", 0o755),
		dir("/proc", 0o555), dir("/root", 0o700), dir("/run", 0o755), dir("/sys", 0o555),
		dir("/tmp", 0o1777), dir("/usr", 0o755), dir("/usr/bin", 0o755), dir("/usr/sbin", 0o755),
		dir("/usr/local", 0o755), dir("/usr/local/bin", 0o755), dir("/var", 0o755),
		dir("/var/spool", 0o755), dir("/var/spool/mail", 0o755), dir("/var/www", 0o755),
		{Name: "/var/run", Type: tar.TypeSymlink, Linkname: "/run", Mode: 0o777},
		reg("/bin/busybox", 0o755, bb),
		reg("/etc/passwd", 0o644, []byte(passwd)),
		reg("/etc/group", 0o644, []byte(group)),
		reg("/bin/hd-testbin", 0o755, testbin),
		{Name: "/bin/ipcs", Mode: 0o755, Type: tar.TypeLink, Linkname: "bin/hd-testbin"},
		{Name: "/bin/pgrep", Mode: 0o755, Type: tar.TypeLink, Linkname: "bin/hd-testbin"},
	}
	libDirs := map[string]bool{}
	var libPaths []string
	for p := range libs {
		libPaths = append(libPaths, p)
	}
	sort.Strings(libPaths)
	for _, p := range libPaths {
		for d := path.Dir(p); d != "/" && !libDirs[d]; d = path.Dir(d) {
			libDirs[d] = true
		}
	}
	var dirs []string
	for d := range libDirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // parents first
	for _, d := range dirs {
		files = append(files, dir(d, 0o755))
	}
	for _, p := range libPaths {
		files = append(files, reg(p, 0o755, libs[p]))
	}
	seen := map[string]bool{"busybox": true, "ipcs": true, "pgrep": true}
	for _, a := range strings.Fields(string(out)) {
		if seen[a] || strings.Contains(a, "/") {
			continue
		}
		seen[a] = true
		// A hard link entry carries the mode of the file it links to: the
		// extractor applies it to the shared inode.
		files = append(files, file{Name: "/bin/" + a, Mode: 0o755, Type: tar.TypeLink, Linkname: "bin/busybox"})
	}
	return layer(files)
}

// imageDef is one image: layers (shared ones are written once) and config.
type imageDef struct {
	Name   string
	Layers [][]byte
	Config ocispec.ImageConfig
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// testImages returns the images the tests and critest use.
func testImages(busybox string, testbin []byte) ([]imageDef, error) {
	base, err := busyboxLayer(busybox, testbin)
	if err != nil {
		return nil, err
	}
	pause, err := layer([]file{reg("/pause", 0o755, testbin)})
	if err != nil {
		return nil, err
	}
	nginx, err := layer([]file{reg("/usr/sbin/nginx", 0o755, testbin)})
	if err != nil {
		return nil, err
	}
	httpd, err := layer([]file{
		dir("/usr/local/apache2", 0o755), dir("/usr/local/apache2/htdocs", 0o755),
		reg("/usr/local/apache2/htdocs/index.html", 0o644, []byte("<html><body><h1>It works!</h1></body></html>\n")),
		reg("/usr/local/bin/httpd-foreground", 0o755, []byte("#!/bin/sh\n"+
			"echo \"httpd: serving /usr/local/apache2/htdocs on :80\"\n"+
			"exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs\n")),
	})
	if err != nil {
		return nil, err
	}
	hostnet, err := layer([]file{
		dir("/usr/share/nginx", 0o755), dir("/usr/share/nginx/html", 0o755),
		reg("/usr/share/nginx/html/index.html", 0o644, []byte("<html><body><h1>Welcome to nginx!</h1></body></html>\n")),
	})
	if err != nil {
		return nil, err
	}
	nnp, err := layer([]file{{Name: "/usr/local/bin/nnp", Mode: 0o4755, Data: testbin}})
	if err != nil {
		return nil, err
	}
	groups, err := layer([]file{
		reg("/etc/passwd", 0o644, []byte(passwd+"default-user:x:1000:1000::/home/default-user:/bin/sh\n")),
		reg("/etc/group", 0o644, []byte(group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")),
		{Name: "/home/default-user", Mode: 0o755, Type: tar.TypeDir, UID: 1000, GID: 1000},
	})
	if err != nil {
		return nil, err
	}
	env := []string{defaultPath}
	return []imageDef{
		{Name: imagePause, Layers: [][]byte{pause},
			Config: ocispec.ImageConfig{Entrypoint: []string{"/pause"}, User: "65535:65535", WorkingDir: "/"}},
		{Name: imageBusybox, Layers: [][]byte{base},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"sh"}}},
		{Name: imageNginx, Layers: [][]byte{base, nginx},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"nginx", "-g", "daemon off;"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"}},
		{Name: imageHttpd, Layers: [][]byte{base, httpd},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"httpd-foreground"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}}, WorkingDir: "/usr/local/apache2"}},
		{Name: imageHostnetNginx, Layers: [][]byte{base, hostnet},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"httpd", "-f", "-v", "-p", "12003", "-h", "/usr/share/nginx/html"},
				ExposedPorts: map[string]struct{}{"12003/tcp": {}}}},
		{Name: imageNoNewPrivs, Layers: [][]byte{base, nnp},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"/usr/local/bin/nnp"}}},
		{Name: imagePredefinedGroup, Layers: [][]byte{base, groups},
			Config: ocispec.ImageConfig{Env: env, Cmd: []string{"sh"}, User: "1000"}},
	}, nil
}

// imageBlobs returns the blobs of the images (layers, configs and
// manifests, by digest; shared layers once) and each image's manifest
// descriptor, in the order of images.
func imageBlobs(images []imageDef) (map[digest.Digest][]byte, []ocispec.Descriptor, error) {
	blobs := map[digest.Digest][]byte{}
	add := func(data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		blobs[d] = data
		return ocispec.Descriptor{Digest: d, Size: int64(len(data))}
	}
	var manifests []ocispec.Descriptor
	for _, img := range images {
		var layers []ocispec.Descriptor
		var diffIDs []digest.Digest
		for _, l := range img.Layers {
			d := add(l)
			d.MediaType = ocispec.MediaTypeImageLayer
			layers = append(layers, d)
			diffIDs = append(diffIDs, d.Digest)
		}
		created := time.Unix(1700000000, 0).UTC()
		cfg, err := json.Marshal(ocispec.Image{
			Created:  &created,
			Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
			Config:   img.Config,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		})
		if err != nil {
			return nil, nil, err
		}
		cd := add(cfg)
		cd.MediaType = ocispec.MediaTypeImageConfig
		man, err := json.Marshal(ocispec.Manifest{
			Versioned: specsgo.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    cd,
			Layers:    layers,
		})
		if err != nil {
			return nil, nil, err
		}
		md := add(man)
		md.MediaType = ocispec.MediaTypeImageManifest
		manifests = append(manifests, md)
	}
	return blobs, manifests, nil
}

// writeOCIArchive writes the images as one OCI image layout tar that
// `ctr images import` reads; io.containerd.image.name carries each full
// name.
func writeOCIArchive(out string, images []imageDef) error {
	blobs, manifests, err := imageBlobs(images)
	if err != nil {
		return err
	}
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	for i, img := range images {
		md := manifests[i]
		md.Platform = &ocispec.Platform{Architecture: "amd64", OS: "linux"}
		tag := img.Name[strings.LastIndex(img.Name, ":")+1:]
		md.Annotations = map[string]string{
			"io.containerd.image.name": img.Name,
			ocispec.AnnotationRefName:  tag,
		}
		index.Manifests = append(index.Manifests, md)
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put(ocispec.ImageIndexFile, idx); err != nil {
		return err
	}
	var ds []string
	for d := range blobs {
		ds = append(ds, string(d))
	}
	sort.Strings(ds)
	for _, d := range ds {
		dg := digest.Digest(d)
		if err := put(path.Join("blobs", dg.Algorithm().String(), dg.Encoded()), blobs[dg]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
