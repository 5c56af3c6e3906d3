package shim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
)

func TestWriteBundleSpecKeepsOriginalOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, configFile)
	original := []byte(`{"ociVersion":"1.2.0","process":{"args":["/bin/sh"],"cwd":"/"},"root":{"path":"rootfs"}}`)
	if err := os.WriteFile(cfg, original, 0o640); err != nil {
		t.Fatal(err)
	}

	_, s, err := readBundleSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Process.NoNewPrivileges = true
	if err := writeBundleSpec(dir, mustJSON(t, s)); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(cfg)
	if got := readSpecFile(t, cfg); !got.Process.NoNewPrivileges {
		t.Error("config.json not rewritten")
	}
	if kept, _ := os.ReadFile(filepath.Join(dir, origConfigFile)); !bytes.Equal(kept, original) {
		t.Errorf("config.json.orig = %s, want the original", kept)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o640 {
		t.Errorf("config.json mode %v, want the original's 0640", st.Mode().Perm())
	}

	// A retry reads the original, not its own output...
	_, again, err := readBundleSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Process.NoNewPrivileges {
		t.Error("readBundleSpec returned the rewritten spec, not config.json.orig")
	}
	// ...and writing again leaves the original alone.
	again.Process.Cwd = "/tmp"
	if err := writeBundleSpec(dir, mustJSON(t, again)); err != nil {
		t.Fatal(err)
	}
	if kept, _ := os.ReadFile(filepath.Join(dir, origConfigFile)); !bytes.Equal(kept, original) {
		t.Errorf("second write replaced config.json.orig with %s", kept)
	}
	if second, _ := os.ReadFile(cfg); bytes.Equal(second, first) {
		t.Error("second write did not replace config.json")
	}
	assertNoTempFiles(t, dir)
}

func TestReportRoundTrip(t *testing.T) {
	ts := newTestService(t, nil)
	bundle := ts.bundle(t, "r", defaultSpec(t, "r", oci.WithProcessArgs("/bin/sh")))
	if _, err := ts.create(t, "r", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	// What Exec falls back to after a restart.
	st, err := loadState(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if st.mode != "enforce" || st.cfg.Profile == nil || st.cfg.Profile.Name != "hardened" || st.cfg.Runtime != "runc" {
		t.Errorf("state %+v", st)
	}
	if st.curPids == nil || *st.curPids != 1024 || st.origPids != nil {
		t.Errorf("pids: current %v original %v, want 1024 and none", st.curPids, st.origPids)
	}
	// The sandbox record a pod's containers read.
	b, cg, err := readSandbox(filepath.Join(filepath.Dir(bundle), "x"), "r")
	if err != nil || b != "runc" {
		t.Errorf("sandbox backend %q %v", b, err)
	}
	if want := readSpecFile(t, filepath.Join(bundle, configFile)).Linux.CgroupsPath; cg != want {
		t.Errorf("sandbox cgroups path %q, want %q", cg, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
