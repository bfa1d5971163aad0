package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decode decodes data strictly into f. The yaml package goes on decoding after a value
// of the wrong type or an unknown or duplicate key and reports them all at the end:
// decode records each as an error in the user's words, and the paths of the values
// it could not decode in v.failed, so that the validator can still check the rest of
// the file. Any other error (bad YAML) means that f holds nothing; it is returned.
func (v *validator) decode(data []byte, f *file) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(f)
	var te *yaml.TypeError
	if err == nil || !errors.As(err, &te) {
		return err
	}
	wrong := mismatches(v.root.Content[0], reflect.TypeFor[file](), nil, "")
	for _, msg := range te.Errors {
		e := yamlError(v.file, msg)
		if match := cannotUnmarshal.FindStringSubmatch(e.Message); match != nil {
			// The yaml package names neither the key nor the column: find the value
			// on that line that cannot become that Go type, in document order as the
			// decoder met them. Without one (a YAML construct the walk does not know),
			// the yaml package's words are better than none.
			i := slices.IndexFunc(wrong, func(m mismatch) bool { return m.node.Line == e.Line && m.want.String() == match[1] })
			if i >= 0 {
				e.Message = wrong[i].message()
				v.failed = append(v.failed, wrong[i].path)
				wrong = slices.Delete(wrong, i, i+1)
			}
		}
		if match := duplicateKey.FindStringSubmatch(e.Message); match != nil {
			// The decoder drops the whole mapping that holds a duplicate key.
			key, _ := strconv.Unquote(match[1])
			if p, ok := mappingWith(v.root.Content[0], nil, e.Line, key); ok {
				v.failed = append(v.failed, p)
			}
		}
		v.errs = append(v.errs, e)
	}
	return nil
}

// mappingWith returns the path of the mapping in which key is written on line.
func mappingWith(n *yaml.Node, p path, line int, key string) (path, bool) {
	for i, c := range n.Content {
		var step any = i
		if n.Kind == yaml.MappingNode {
			if i%2 == 0 {
				if c.Line == line && c.Value == key {
					return p, true
				}
				continue
			}
			step = n.Content[i-1].Value
		}
		if found, ok := mappingWith(c, slices.Concat(p, path{step}), line, key); ok {
			return found, true
		}
	}
	return nil, false
}

var (
	yamlLine        = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField    = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	cannotUnmarshal = regexp.MustCompile(`^cannot unmarshal \S+(?: .*)? into (\S+)$`)
	duplicateKey    = regexp.MustCompile(`^mapping key (".*") already defined at line \d+$`)
)

// decodeErrors turns an error of the yaml package that stopped it (bad YAML) into
// file:line errors.
func decodeErrors(name string, err error) Errors {
	return Errors{yamlError(name, err.Error())}
}

// yamlError turns one message of the yaml package into a file:line error that names
// the problem in the user's words.
func yamlError(name, msg string) *Error {
	e := &Error{File: name, Message: msg}
	if match := yamlLine.FindStringSubmatch(msg); match != nil {
		e.Line, _ = strconv.Atoi(match[1])
		e.Message = match[2]
	}
	if match := unknownField.FindStringSubmatch(e.Message); match != nil {
		e.Message = fmt.Sprintf("unknown key %q (check the spelling and the indentation)", match[1])
	}
	return e
}

// mismatch is a value in the document that cannot be decoded into the Go type its
// place in sites.yaml asks for.
type mismatch struct {
	node *yaml.Node
	path path
	name string // the key as the user wrote it, or the list's for an item
	want reflect.Type
}

// mismatches walks the document beside the Go type it decodes into and returns every
// value that cannot become that type, as the yaml package would judge it.
func mismatches(n *yaml.Node, t reflect.Type, p path, name string) []mismatch {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // null leaves the zero value, whatever the type
	}
	wrong := []mismatch{{node: n, path: p, name: name, want: t}}
	var out []mismatch
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			return wrong
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i].Value, n.Content[i+1]
			vt := t
			if t.Kind() == reflect.Map {
				vt = t.Elem()
			} else if f, ok := fieldByKey(t, key); ok {
				vt = f.Type
			} else {
				continue // an unknown key, which the decoder reports itself
			}
			out = append(out, mismatches(value, vt, slices.Concat(p, path{key}), key)...)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return wrong
		}
		for i, item := range n.Content {
			out = append(out, mismatches(item, t.Elem(), slices.Concat(p, path{i}), name)...)
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			return wrong
		}
	}
	return out
}

// fieldByKey returns the field of struct type t that the key decodes into.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == key && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// message says what the value must be, in words a marketing team can act on.
func (m mismatch) message() string {
	if len(m.path) == 0 {
		return "the file must be a mapping with controller, dpo, categories, partners and sites (see the shipped sites.yaml)"
	}
	name := m.name
	if _, item := m.path[len(m.path)-1].(int); item {
		name = "each item of " + name
	}
	var must string
	switch m.want.Kind() {
	case reflect.Bool:
		must = "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		must = "must be a whole number"
	case reflect.Slice:
		if m.node.Kind == yaml.ScalarNode {
			return fmt.Sprintf("%s must be a list, such as [%s]", name, m.node.Value)
		}
		must = "must be a list"
	case reflect.Struct, reflect.Map:
		must = "must be a mapping"
	case reflect.String:
		must = "must be text"
	default:
		must = "has the wrong type"
	}
	if m.node.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%s %s, not %q", name, must, m.node.Value)
	}
	return name + " " + must
}
