// Package tomlpos finds where keys and string values sit in a TOML
// document, so that a validation error about a decoded value (an unknown
// capability, a runtime nobody configured) can name the file's line.
//
// go-toml reports positions for syntax errors, type mismatches and unknown
// keys, but a value that decodes fine and fails a later check has lost its
// position by then; this index recovers it from the raw text.
package tomlpos

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Pos is a 1-based line and column. The zero Pos means "unknown".
type Pos struct {
	Line   int
	Column int
}

// Index maps key paths to the positions of their keys and string values.
//
// A path joins key parts with "."; an element of an array of tables
// ([[routes]]) or of an array of inline tables carries its 0-based index:
// "routes[1].runtime", "rootfs.scratch[0].path". The strings of an array of
// strings are all indexed under the array's own path ("seccomp.deny").
type Index struct {
	keys   map[string]Pos
	at     map[Pos]string // position of a key's first part -> its path
	values map[string][]value
	arrays map[string]int // array-of-tables path -> elements seen so far
}

type value struct {
	s   string
	pos Pos
}

// Build indexes data. It is best effort: on a syntax error it keeps what it
// found before the error (the decoder reports the error itself).
func Build(data []byte) *Index {
	ix := &Index{
		keys:   map[string]Pos{},
		at:     map[Pos]string{},
		values: map[string][]value{},
		arrays: map[string]int{},
	}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		expr := p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, nodes := keyParts(expr.Key())
			table = ix.header(&p, parts, nodes, expr.Kind == unstable.ArrayTable)
		case unstable.KeyValue:
			ix.keyValue(&p, table, expr)
		}
	}
	return ix
}

// Key returns the position of the key at path.
func (ix *Index) Key(path string) (Pos, bool) {
	if ix == nil {
		return Pos{}, false
	}
	p, ok := ix.keys[path]
	return p, ok
}

// Value returns the position of the first string equal to s at path (the
// value of a key, or an element of an array of strings).
func (ix *Index) Value(path, s string) (Pos, bool) {
	if ix == nil {
		return Pos{}, false
	}
	for _, v := range ix.values[path] {
		if v.s == s {
			return v.pos, true
		}
	}
	return Pos{}, false
}

// Line returns the line of the string s at path if it is there, else the
// line of the key at path or, failing that, of its nearest parent
// ([runtimes.runc] for a missing runtimes.runc.path), else 0.
func (ix *Index) Line(path, s string) int {
	if p, ok := ix.Value(path, s); ok {
		return p.Line
	}
	for path != "" {
		if p, ok := ix.Key(path); ok {
			return p.Line
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// PathAt returns the path of the key whose first part starts at pos.
func (ix *Index) PathAt(pos Pos) (string, bool) {
	if ix == nil {
		return "", false
	}
	p, ok := ix.at[pos]
	return p, ok
}

// header resolves a [table] or [[array]] header to its indexed path and
// records the position of every prefix of it.
func (ix *Index) header(p *unstable.Parser, parts []string, nodes []*unstable.Node, array bool) string {
	path := ""
	for i, part := range parts {
		path = join(path, part)
		ix.setKey(path, pos(p, nodes[i]))
		if array && i == len(parts)-1 {
			n := ix.arrays[path]
			ix.arrays[path] = n + 1
			path = indexed(path, n)
		} else if n, ok := ix.arrays[path]; ok && n > 0 {
			// [routes.match] after [[routes]]: the last element.
			path = indexed(path, n-1)
		}
		ix.setKey(path, pos(p, nodes[i]))
	}
	if len(nodes) > 0 {
		ix.at[pos(p, nodes[0])] = path
	}
	return path
}

func (ix *Index) keyValue(p *unstable.Parser, table string, kv *unstable.Node) {
	parts, nodes := keyParts(kv.Key())
	path := table
	for i, part := range parts {
		path = join(path, part)
		ix.setKey(path, pos(p, nodes[i]))
	}
	if len(nodes) > 0 {
		ix.at[pos(p, nodes[0])] = path
	}
	ix.value(p, path, kv.Value())
}

func (ix *Index) value(p *unstable.Parser, path string, n *unstable.Node) {
	if !n.Valid() {
		return
	}
	switch n.Kind {
	case unstable.String:
		ix.values[path] = append(ix.values[path], value{s: string(n.Data), pos: pos(p, n)})
	case unstable.Array:
		it := n.Children()
		for i := 0; it.Next(); i++ {
			c := it.Node()
			switch c.Kind {
			case unstable.InlineTable, unstable.Array:
				ix.setKey(indexed(path, i), pos(p, c))
				ix.value(p, indexed(path, i), c)
			default:
				ix.value(p, path, c)
			}
		}
	case unstable.InlineTable:
		it := n.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				ix.keyValue(p, path, c)
			}
		}
	}
}

func (ix *Index) setKey(path string, p Pos) {
	if p.Line == 0 {
		return
	}
	if _, ok := ix.keys[path]; !ok {
		ix.keys[path] = p
	}
}

func keyParts(it unstable.Iterator) ([]string, []*unstable.Node) {
	var parts []string
	var nodes []*unstable.Node
	for it.Next() {
		nodes = append(nodes, it.Node())
		parts = append(parts, string(it.Node().Data))
	}
	return parts, nodes
}

func pos(p *unstable.Parser, n *unstable.Node) Pos {
	if n.Raw.Length == 0 && n.Raw.Offset == 0 {
		return Pos{}
	}
	if int(n.Raw.Offset)+int(n.Raw.Length) > len(p.Data()) {
		return Pos{}
	}
	s := p.Shape(n.Raw)
	return Pos{Line: s.Start.Line, Column: s.Start.Column}
}

func join(prefix, part string) string {
	if prefix == "" {
		return part
	}
	return prefix + "." + part
}

func indexed(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// StripIndices removes the array indices of a path: "routes[0].match.x"
// becomes "routes.match.x", the key's name in TOML terms.
func StripIndices(path string) string {
	return indexRE.ReplaceAllString(path, "")
}

var (
	indexRE   = regexp.MustCompile(`\[[0-9]+\]`)
	goFieldRE = regexp.MustCompile(`into struct field \S+ of type (\S+)`)
)

// Problem is one decoding problem with its place.
type Problem struct {
	Pos Pos
	Msg string
}

// DecodeProblems turns an error of go-toml's decoder into problems with
// positions: one per unknown key ("unknown key rootfs.readonly", the full
// path found in ix, since go-toml's own is incomplete inside inline tables
// of arrays of tables), or the syntax or type error. An error that is none
// of these gives one problem without a position.
func DecodeProblems(err error, ix *Index) []Problem {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		ps := make([]Problem, 0, len(sm.Errors))
		for i := range sm.Errors {
			line, col := sm.Errors[i].Position()
			pos := Pos{Line: line, Column: col}
			name := strings.Join(sm.Errors[i].Key(), ".")
			if path, ok := ix.PathAt(pos); ok {
				name = StripIndices(path)
			}
			ps = append(ps, Problem{Pos: pos, Msg: "unknown key " + name})
		}
		return ps
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if strings.HasPrefix(msg, "cannot decode") {
			// "cannot decode TOML integer into struct field
			// profiles.Profile.Name of type string" speaks Go; say
			// "name: cannot decode TOML integer into string".
			msg = goFieldRE.ReplaceAllString(msg, "into $1")
			if k := de.Key(); len(k) > 0 {
				msg = strings.Join(k, ".") + ": " + msg
			}
		}
		return []Problem{{Pos: Pos{Line: line, Column: col}, Msg: msg}}
	}
	return []Problem{{Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
}
