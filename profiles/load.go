package profiles

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/hardened-dev/hardened/internal/tomlpos"
)

//go:embed builtin/*.toml
var builtinFS embed.FS

// maxFileSize bounds a profile file: real ones are a few KiB.
const maxFileSize = 1 << 20

// Set is an immutable collection of profiles with unique names. Get returns
// copies, so a Set can be shared freely.
type Set struct {
	byName map[string]*entry
	order  []string // by rank, then name
}

type entry struct {
	profile *Profile
	source  string
	builtin bool
}

var (
	builtinOnce sync.Once
	builtinSet  *Set
	builtinErr  error
)

// Builtin returns the built-in profiles (baseline, restricted, strict).
// They are embedded data checked by the package's tests; Builtin panics
// only if that data does not load, which is a build defect.
func Builtin() *Set {
	builtinOnce.Do(func() {
		builtinSet, builtinErr = loadBuiltin()
	})
	if builtinErr != nil {
		panic(fmt.Sprintf("hardened: built-in profiles do not load: %v", builtinErr))
	}
	return builtinSet
}

func loadBuiltin() (*Set, error) {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		return nil, fmt.Errorf("failed to read built-in profiles: %w", err)
	}
	var files []*file
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		name := path.Join("builtin", e.Name())
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("failed to read built-in profile: %w", err)
		}
		files = append(files, &file{source: name, data: data})
	}
	s, err := build(files, nil)
	if err != nil {
		return nil, err
	}
	for _, e := range s.byName {
		e.builtin = true
	}
	return s, nil
}

// Load returns the built-in profiles plus every *.toml file in dir. A
// missing dir (or "") gives the built-ins only; an unreadable or invalid
// file is an error (wrapping ErrInvalidProfile) that names the file and,
// where it can, the line. A file may extend a built-in profile or another
// file of dir; it may not reuse a name.
func Load(dir string) (*Set, error) {
	base := Builtin()
	if dir == "" {
		return base, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return base, nil
	}
	if err != nil {
		return nil, &Error{File: dir, Msg: fmt.Sprintf("failed to read profiles directory: %v", err), Err: err}
	}
	var files []*file
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".toml") || e.IsDir() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		data, err := readFile(name)
		if err != nil {
			return nil, &Error{File: name, Msg: fmt.Sprintf("failed to read profile: %v", err), Err: err}
		}
		files = append(files, &file{source: name, data: data})
	}
	return build(files, base)
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// Parse decodes and validates one profile file. Its base (extends) is
// looked up in bases (the built-ins when bases is nil); its name must not
// be one of bases'. source names the file in error messages.
func Parse(data []byte, source string, bases *Set) (*Profile, error) {
	if bases == nil {
		bases = Builtin()
	}
	s, err := build([]*file{{source: source, data: data}}, bases)
	if err != nil {
		return nil, err
	}
	for _, e := range s.byName {
		if e.source == source && !e.builtin {
			return e.profile.Clone(), nil
		}
	}
	return nil, &Error{File: source, Msg: "no profile decoded"}
}

// Get returns a copy of the named profile, or an error wrapping
// ErrUnknownProfile that lists the known names.
func (s *Set) Get(name string) (*Profile, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	return e.profile.Clone(), nil
}

// Has reports whether the set holds a profile of that name.
func (s *Set) Has(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.byName[name]
	return ok
}

// Source returns where the named profile came from ("builtin/strict.toml"
// or the file's path), or "" for an unknown name.
func (s *Set) Source(name string) string {
	if s == nil {
		return ""
	}
	if e, ok := s.byName[name]; ok {
		return e.source
	}
	return ""
}

// IsBuiltin reports whether the named profile is one of the built-ins.
func (s *Set) IsBuiltin(name string) bool {
	if s == nil {
		return false
	}
	e, ok := s.byName[name]
	return ok && e.builtin
}

// Names returns the profile names, least strict first (by rank, then name).
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.order)
}

// Compare orders two profiles by strictness (rank): -1 if a is less strict
// than b, 0 if equally strict, +1 if stricter.
func (s *Set) Compare(a, b string) (int, error) {
	ea, err := s.lookup(a)
	if err != nil {
		return 0, err
	}
	eb, err := s.lookup(b)
	if err != nil {
		return 0, err
	}
	return cmp.Compare(ea.profile.Rank, eb.profile.Rank), nil
}

// AtLeast reports whether profile name is at least as strict as minimum.
func (s *Set) AtLeast(name, minimum string) (bool, error) {
	c, err := s.Compare(name, minimum)
	if err != nil {
		return false, err
	}
	return c >= 0, nil
}

func (s *Set) lookup(name string) (*entry, error) {
	if s != nil {
		if e, ok := s.byName[name]; ok {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, strings.Join(s.Names(), ", "))
}

func (s *Set) clone() *Set {
	c := &Set{byName: make(map[string]*entry, len(s.byName)), order: slices.Clone(s.order)}
	for k, v := range s.byName {
		c.byName[k] = v
	}
	return c
}

func (s *Set) add(p *Profile, source string) {
	s.byName[p.Name] = &entry{profile: p, source: source}
	s.order = append(s.order, p.Name)
	slices.SortFunc(s.order, func(a, b string) int {
		return cmp.Or(cmp.Compare(s.byName[a].profile.Rank, s.byName[b].profile.Rank), cmp.Compare(a, b))
	})
}

// file is one profile file on its way through build.
type file struct {
	source string
	data   []byte
	idx    *tomlpos.Index
	header header
	state  int // 0 new, 1 resolving, 2 done
}

// header holds the keys decoded before the rest of the file: the name and
// what the file extends.
type header struct {
	Name    string `toml:"name"`
	Extends string `toml:"extends"`
}

// build decodes files over their bases and returns bases (may be nil) plus
// the files' profiles. Files may extend each other; order does not matter.
func build(files []*file, bases *Set) (*Set, error) {
	s := &Set{byName: map[string]*entry{}}
	if bases != nil {
		s = bases.clone()
	}
	slices.SortFunc(files, func(a, b *file) int { return cmp.Compare(a.source, b.source) })
	byName := map[string]*file{}
	for _, f := range files {
		f.idx = tomlpos.Build(f.data)
		if err := toml.Unmarshal(f.data, &f.header); err != nil {
			return nil, decodeError(f.source, f.idx, err)
		}
		name := f.header.Name
		line := f.idx.Line("name", name)
		if err := checkName(name); err != nil {
			return nil, &Error{File: f.source, Line: line, Msg: err.Error()}
		}
		if s.Has(name) {
			return nil, &Error{File: f.source, Line: line,
				Msg: fmt.Sprintf("profile %q is already defined in %s", name, s.Source(name))}
		}
		if other, ok := byName[name]; ok {
			return nil, &Error{File: f.source, Line: line,
				Msg: fmt.Sprintf("profile %q is already defined in %s", name, other.source)}
		}
		byName[name] = f
	}

	var resolve func(f *file, chain []string) error
	resolve = func(f *file, chain []string) error {
		switch f.state {
		case 2:
			return nil
		case 1:
			cycle := append(chain, f.header.Name)
			return &Error{File: f.source, Line: f.idx.Line("extends", f.header.Extends),
				Msg: "extends cycle: " + strings.Join(cycle[slices.Index(cycle, f.header.Name):], " -> ")}
		}
		f.state = 1
		chain = append(chain, f.header.Name)
		var base *Profile
		if ext := f.header.Extends; ext != "" {
			if bf, ok := byName[ext]; ok {
				if err := resolve(bf, chain); err != nil {
					return err
				}
			}
			e, ok := s.byName[ext]
			if !ok {
				known := slices.Clone(s.order)
				for n := range byName {
					if n != f.header.Name {
						known = append(known, n)
					}
				}
				slices.Sort(known)
				return &Error{File: f.source, Line: f.idx.Line("extends", ext),
					Msg: fmt.Sprintf("extends unknown profile %q (known: %s)", ext, strings.Join(known, ", "))}
			}
			base = e.profile
		}
		p, err := decode(f, base)
		if err != nil {
			return err
		}
		s.add(p, f.source)
		f.state = 2
		return nil
	}
	for _, f := range files {
		if err := resolve(f, nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// decode decodes f over a deep copy of base (unset keys inherit, lists
// replace) and validates the result.
func decode(f *file, base *Profile) (*Profile, error) {
	p := base.Clone()
	if p == nil {
		p = &Profile{}
	}
	d := toml.NewDecoder(bytes.NewReader(f.data))
	d.DisallowUnknownFields()
	if err := d.Decode(p); err != nil {
		return nil, decodeError(f.source, f.idx, err)
	}
	if errs := problemErrors(f.source, tomlpos.CaseMismatches(f.data, f.idx, p)); len(errs) > 0 {
		return nil, join(errs)
	}
	// A base's own base is not this profile's: say what this file says.
	p.Extends = f.header.Extends
	if errs := validate(p, f.source, f.idx); len(errs) > 0 {
		return nil, join(errs)
	}
	return p, nil
}

// decodeError turns a go-toml error into *Error(s) with positions.
func decodeError(source string, idx *tomlpos.Index, err error) error {
	return join(problemErrors(source, tomlpos.DecodeProblems(err, idx)))
}

func problemErrors(source string, problems []tomlpos.Problem) []*Error {
	var errs []*Error
	for _, p := range problems {
		errs = append(errs, &Error{File: source, Line: p.Pos.Line, Column: p.Pos.Column, Msg: p.Msg})
	}
	return errs
}
