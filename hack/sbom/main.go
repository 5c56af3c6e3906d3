// Command sbom writes an SPDX 2.3 JSON software bill of materials for Go
// binaries: each binary a file (with its SHA-256), each Go module linked
// into it a package (path, version, the module sum when the build recorded
// one, a purl), from the build information the Go linker embeds
// (debug/buildinfo), the Go standard library of the toolchain that built
// it, and C libraries linked in (-c NAME=VERSION: libseccomp in a static
// build). Used by `make release`.
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

type doc struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creation       `json:"creationInfo"`
	Packages          []pkg          `json:"packages"`
	Files             []file         `json:"files"`
	Relationships     []relationship `json:"relationships"`
}

type creation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type pkg struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	VersionInfo      string        `json:"versionInfo"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Comment          string        `json:"comment,omitempty"`
	ExternalRefs     []externalRef `json:"externalRefs,omitempty"`
}

type externalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type file struct {
	SPDXID    string     `json:"SPDXID"`
	FileName  string     `json:"fileName"`
	Checksums []checksum `json:"checksums"`
}

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

func main() {
	name := flag.String("name", "hardened", "the document's name")
	version := flag.String("version", "dev", "the release")
	var clibs cLibs
	flag.Var(&clibs, "c", "a C library linked into every binary, NAME=VERSION (repeatable)")
	flag.Parse()
	if err := run(*name, *version, clibs, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "sbom: %v\n", err)
		os.Exit(1)
	}
}

func spdxID(kind, s string) string {
	r := strings.NewReplacer("/", "-", "@", "-", "_", "-", "+", "-", "~", "-")
	return "SPDXRef-" + kind + "-" + r.Replace(s)
}

type cLibs []*debugModule

func (c *cLibs) String() string { return fmt.Sprint(len(*c)) }

func (c *cLibs) Set(s string) error {
	n, v, ok := strings.Cut(s, "=")
	if !ok || n == "" || v == "" {
		return fmt.Errorf("want NAME=VERSION, got %q", s)
	}
	*c = append(*c, &debugModule{n, v, ""})
	return nil
}

func run(name, version string, clibs cLibs, binaries []string) error {
	if len(binaries) == 0 {
		return fmt.Errorf("no binaries")
	}
	created := time.Now().UTC()
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		var sec int64
		if _, err := fmt.Sscan(e, &sec); err == nil {
			created = time.Unix(sec, 0).UTC()
		}
	}
	d := doc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              name + "-" + version,
		DocumentNamespace: "https://github.com/hardened-dev/hardened/spdx/" + name + "-" + version,
		CreationInfo:      creation{Created: created.Format(time.RFC3339), Creators: []string{"Tool: hardened hack/sbom"}},
	}
	seen := map[string]bool{}
	for _, b := range binaries {
		data, err := os.ReadFile(b)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fid := spdxID("File", filepath.Base(b))
		d.Files = append(d.Files, file{SPDXID: fid, FileName: "./" + filepath.Base(b),
			Checksums: []checksum{{"SHA256", hex.EncodeToString(sum[:])}}})
		d.Relationships = append(d.Relationships, relationship{"SPDXRef-DOCUMENT", "DESCRIBES", fid})
		bi, err := buildinfo.ReadFile(b)
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		mods := append([]*debugModule{{bi.Main.Path, version, ""}, {"stdlib", bi.GoVersion, ""}}, modules(bi)...)
		mods = append(mods, clibs...)
		for _, m := range mods {
			id := spdxID("Package", m.path+"@"+m.version)
			if !seen[id] {
				seen[id] = true
				purl := "pkg:golang/" + m.path + "@" + m.version
				if slices.Contains(clibs, m) {
					purl = "pkg:generic/" + m.path + "@" + m.version
				}
				p := pkg{SPDXID: id, Name: m.path, VersionInfo: m.version, DownloadLocation: "NOASSERTION",
					ExternalRefs: []externalRef{{"PACKAGE-MANAGER", "purl", purl}}}
				if m.sum != "" {
					p.Comment = "go.sum " + m.sum
				}
				d.Packages = append(d.Packages, p)
			}
			d.Relationships = append(d.Relationships, relationship{fid, "CONTAINS", id})
		}
	}
	sort.Slice(d.Packages, func(i, j int) bool { return d.Packages[i].SPDXID < d.Packages[j].SPDXID })
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

type debugModule struct{ path, version, sum string }

// modules are the binary's dependencies, replacements resolved.
func modules(bi *buildinfo.BuildInfo) []*debugModule {
	var out []*debugModule
	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		out = append(out, &debugModule{m.Path, m.Version, m.Sum})
	}
	return out
}
