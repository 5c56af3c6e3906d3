package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/internal/atomicfile"
)

// Files the shim keeps in a bundle, next to containerd's config.json.
const (
	configFile = "config.json"
	// origConfigFile is containerd's unhardened config.json, kept (as a
	// hard link to the original inode) the first time the shim rewrites it.
	origConfigFile = "config.json.orig"
	// reportFile is the human-readable record of what the shim did.
	reportFile = "hardening-report.json"
	// stateFile is what the shim needs to harden an exec after it lost its
	// memory: the configuration the container was hardened with.
	stateFile = "hardening-state.json"
)

// readBundleSpecFile reads the spec to harden: the original containerd
// wrote, which is config.json.orig when an earlier attempt already rewrote
// config.json (a retried Create must start from the same input, not from
// its own output).
func readBundleSpecFile(bundle string) (raw []byte, path string, err error) {
	path = filepath.Join(bundle, origConfigFile)
	raw, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		path = filepath.Join(bundle, configFile)
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, path, fmt.Errorf("failed to read the bundle's spec: %w", err)
	}
	return raw, path, nil
}

// readBundleSpec reads and decodes the spec to harden (readBundleSpecFile).
func readBundleSpec(bundle string) ([]byte, *specs.Spec, error) {
	raw, path, err := readBundleSpecFile(bundle)
	if err != nil {
		return nil, nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return raw, &s, nil
}

// writeBundleSpec replaces config.json with data, an encoded spec. The
// original is kept as config.json.orig, once: a hard link made before the
// rename, and never replaced (link(2) fails when the name exists), so a
// retry cannot overwrite the original with an already hardened spec. The
// new file is written beside the old one, synced and renamed over it, so
// runc reads either the old spec or the whole new one.
func writeBundleSpec(bundle string, data []byte) error {
	cfg := filepath.Join(bundle, configFile)
	st, err := os.Stat(cfg)
	if err != nil {
		return fmt.Errorf("failed to stat %s: %w", cfg, err)
	}
	if err := os.Link(cfg, filepath.Join(bundle, origConfigFile)); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("failed to keep the original spec: %w", err)
	}
	return atomicfile.Write(cfg, data, st.Mode().Perm())
}

// indentJSON encodes a record the shim keeps in a bundle.
func indentJSON(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return nil
}
