package shim

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
)

func withBind(src, dst string) oci.SpecOpts {
	return oci.WithMounts([]specs.Mount{{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", "ro"}}})
}

// The engine sees a bind source as written; the shim opens it on the host
// without following symlinks (pin.go), so a data directory that is a
// symlink to /proc is refused: for the symlink, which it names.
func TestCreateResolvesBindSources(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink("/proc", link); err != nil {
		t.Fatal(err)
	}
	ts := pinService(t, nil)
	// The node policy's consent for the test's directory.
	pol := "allow_host_path_prefixes = [{ prefix = \"" + dir + "/\" }]\n" + testPolicy("enforce", "")

	ok := defaultSpec(t, "data", oci.WithProcessArgs("/bin/sh"), withBind(data, "/data"))
	if _, err := ts.create(t, "data", ts.bundle(t, "data", ok), policyOpts(t, pol)); err != nil {
		t.Fatalf("a plain data directory refused: %v", err)
	}

	bad := defaultSpec(t, "link", oci.WithProcessArgs("/bin/sh"), withBind(link, "/data"))
	_, err := ts.create(t, "link", ts.bundle(t, "link", bad), policyOpts(t, pol))
	wantCode(t, err, codes.FailedPrecondition, "mounts", "symlink", "innocent -> /proc")
	if len(ts.inner.creates) != 1 {
		t.Fatalf("inner creates = %d, want only the plain one", len(ts.inner.creates))
	}

	missing := defaultSpec(t, "missing", oci.WithProcessArgs("/bin/sh"), withBind(filepath.Join(dir, "nope"), "/data"))
	_, err = ts.create(t, "missing", ts.bundle(t, "missing", missing), policyOpts(t, pol))
	wantCode(t, err, codes.FailedPrecondition, "mounts", "does not exist")
}
