package tomlpos

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// go-toml matches a key to a struct field case-insensitively when no tag
// matches exactly: "Default_Profile" would set default_profile. A node
// policy or a profile whose keys only look right is a misconfiguration
// waiting to be misread, so the parsers refuse it.

// CaseMismatches lists, with their paths, the keys of data that name a
// field of v's type (a struct) only when case is ignored, each with the
// key it should be: "Default_Profile: keys are case-sensitive: did you mean
// default_profile". Keys of maps (annotations, runtime names) are the
// file's own and are not checked; the tables they hold are.
// Positions come from idx (the document's index).
func CaseMismatches(data []byte, idx *Index, v any) []Problem {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil // the decoder reports it
	}
	var paths []string
	walkCase(doc, reflect.TypeOf(v), "", &paths)
	sort.Strings(paths)
	var out []Problem
	for _, p := range paths {
		key, want, _ := strings.Cut(p, "\x00")
		pos, _ := idx.Key(key)
		out = append(out, Problem{Pos: pos, Msg: fmt.Sprintf("%s: keys are case-sensitive: did you mean %s", key, want)})
	}
	return out
}

// walkCase appends "path\x00wanted" for each key spelt in another case.
func walkCase(node any, t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := node.(type) {
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range n {
				walkCase(e, t.Elem(), indexed(path, i), out)
			}
		}
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			for k, e := range n {
				walkCase(e, t.Elem(), join(path, k), out)
			}
		case reflect.Struct:
			tags := fieldTags(t)
			for k, e := range n {
				ft, exact := tags[k]
				if !exact {
					for tag, f := range tags {
						if strings.EqualFold(tag, k) {
							*out = append(*out, join(path, k)+"\x00"+join(path, tag))
							ft, exact = f, true
							break
						}
					}
				}
				if exact {
					walkCase(e, ft, join(path, k), out)
				}
			}
		}
	}
}

func fieldTags(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}
