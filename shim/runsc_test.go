package shim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	"google.golang.org/grpc/codes"

	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

func TestCreateGVisorWithoutWrapperRefused(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ts := newTestService(t, nil)
	ts.wrapper = func() (string, error) { return hostfacts.FindRunscWrapper(filepath.Join(t.TempDir(), "shim")) }
	orig := defaultSpec(t, "g", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(map[string]string{"hardened.dev/runtime": "gvisor"}))
	bundle := ts.bundle(t, "g", orig)
	_, err := ts.create(t, "g", bundle, policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, runscwrap.Name, "not installed")
	if len(ts.inner.creates) != 0 {
		t.Error("the stock Create ran without the wrapper")
	}
	if _, err := os.Stat(filepath.Join(bundle, reportFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused Create left %s behind (%v)", reportFile, err)
	}
}
