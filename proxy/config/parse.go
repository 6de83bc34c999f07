package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file. Parse joins several of them
// with errors.Join; errors.As finds each.
type Error struct {
	File string
	Line int    // 1-based
	Path string // the setting, e.g. routes[0].streamingDomain.name; empty for the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	var where string
	switch {
	case e.File != "" && e.Line > 0:
		where = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	case e.File != "":
		where = e.File + ": "
	case e.Line > 0:
		where = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Path != "" {
		where += e.Path + ": "
	}
	return where + e.Msg
}

// Load reads and parses the configuration file at path.
func Load(path string) (*Gateway, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes data strictly, fills in defaults and validates the result.
// file names the source in error messages.
func Parse(file string, data []byte) (*Gateway, error) {
	p := &parser{file: file, lines: map[string]int{}, budget: len(data) + 1}
	g := p.parse(data)
	if len(p.errs) == 0 {
		return g, nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if len(data) > 0 && data[len(data)-1] != '\n' {
		p.at(bytes.Count(data, []byte("\n"))+1, "", "the file does not end with a newline; was it cut short while being written?")
	}
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

type parser struct {
	file string
	// lines maps the path of every setting present in the file to its line,
	// so that validation can point at what it rejects, or at the enclosing
	// setting when the offending one is missing.
	lines map[string]int
	errs  []*Error
	// budget bounds the values decoded. Without aliases there are fewer
	// values than bytes in the file; with them, lists of aliases to lists of
	// aliases could make a small file decode into millions.
	budget int
}

func (p *parser) at(line int, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// errorf reports a problem with the setting at path, on its line if the file
// has it and otherwise on the line of the closest enclosing setting.
func (p *parser) errorf(path, format string, args ...any) {
	p.at(p.line(path), path, format, args...)
}

func (p *parser) line(path string) int {
	for {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return p.lines[""]
		}
		path = path[:i]
	}
}

func (p *parser) parse(data []byte) *Gateway {
	if line, msg := checkText(data); msg != "" {
		p.at(line, "", "%s", msg)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, next yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			p.at(1, "", "the file is empty; want streamingDomains and routes, optionally under a gateway key")
		} else {
			p.yamlError(data, err)
		}
		return nil
	}
	switch err := dec.Decode(&next); {
	case err == nil:
		p.at(next.Line, "", "a second YAML document starts here; the file must hold one")
		return nil
	case err != io.EOF:
		p.yamlError(data, err)
		return nil
	}

	root := resolve(doc.Content[0]) // yaml.v3 gives every document one node
	p.lines[""] = root.Line
	if mapValue(root, "gateway") != nil {
		var gw *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			switch k := resolve(root.Content[i]); {
			case k.Value != "gateway":
				p.at(k.Line, "", "unknown key %q (allowed: gateway, which holds all the settings)", k.Value)
			case gw != nil:
				p.at(k.Line, "", "key \"gateway\" is repeated (first on line %d)", p.lines[""])
			default:
				gw = resolve(root.Content[i+1])
				p.lines[""] = k.Line
			}
		}
		root = gw
	}
	if root.Kind != yaml.MappingNode {
		p.at(root.Line, "", "want a mapping of settings (streamingDomains, routes, ...), got %s", describeNode(root))
		return nil
	}
	g := &Gateway{File: p.file}
	p.decode(root, reflect.ValueOf(g).Elem(), "", root.Line)
	if len(p.errs) > 0 {
		// Validating a file that did not decode would mostly repeat the
		// decoding errors (a misspelt key is also a missing one).
		return nil
	}
	p.validate(g)
	return g
}

// checkText finds what yaml.v3 rejects without saying where: bytes that are
// not UTF-8 and characters YAML does not allow.
func checkText(data []byte) (line int, msg string) {
	line = 1
	for b := bytes.TrimPrefix(data, []byte("\uFEFF")); len(b) > 0; {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			return line, "the file is not UTF-8 text"
		case !printable(r):
			return line, fmt.Sprintf("character %U is not allowed in YAML", r)
		case r == '\n':
			line++
		}
		b = b[size:]
	}
	return 0, ""
}

// printable reports whether YAML allows r in a file (c-printable; Go's UTF-8
// decoding already rules out surrogates).
func printable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
		r >= 0xa0 && r <= 0xfffd || r >= 0x10000
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced`)
)

// yamlParserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner. It numbers their lines from 0.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
}

// yamlError turns a yaml.v3 syntax error into an *Error. yaml.v3 leaves the
// line out of messages about the first line, and out of the one about an
// unknown anchor.
func (p *parser) yamlError(data []byte, err error) {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(yamlParserProblems, msg) {
		line++
	} else if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = bytes.Count(data[:i], []byte("\n")) + 1
		}
	}
	p.at(max(line, 1), "", "invalid YAML: %s", msg)
}

// decode sets v from n as yaml.v3 would, but rejects unknown and repeated
// keys, records the line of every setting and sets the Line fields of the
// types.
func (p *parser) decode(n *yaml.Node, v reflect.Value, path string, line int) {
	if p.budget--; p.budget < 0 {
		if p.budget == -1 {
			p.at(n.Line, path, "aliases repeat settings more often than any configuration needs")
		}
		return
	}
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		p.decodeStruct(n, v, path)
		if f := v.FieldByName("Line"); f.IsValid() {
			f.SetInt(int64(line))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.at(n.Line, path, "want a list, got %s", describeNode(n))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			p.lines[ipath] = item.Line
			p.decode(item, v.Index(i), ipath, item.Line)
		}
	case reflect.Map: // the free-form entries of secretStores
		if err := n.Decode(v.Addr().Interface()); err != nil {
			p.at(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(v.Addr().Interface()) != nil {
			p.at(n.Line, path, "want %s, got %s", describeType(v.Type()), describeNode(n))
		}
	}
}

func (p *parser) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		p.at(n.Line, path, "want a mapping, got %s", describeNode(n))
		return
	}
	t := v.Type()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			p.at(k.Line, path, "want a key name, got %s", describeNode(k))
			continue
		}
		f, ok := fieldByKey(t, k.Value)
		if !ok {
			p.at(k.Line, path, "unknown key %q (allowed: %s)", k.Value, strings.Join(keys(t), ", "))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.at(k.Line, path, "key %q is repeated (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fpath := k.Value
		if path != "" {
			fpath = path + "." + k.Value
		}
		p.lines[fpath] = k.Line
		p.decode(n.Content[i+1], v.Field(f), fpath, k.Line)
	}
}

// yamlKey is the key of a struct field in the file; "" for fields not read
// from it.
func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" || !f.IsExported() {
		return ""
	}
	return k
}

func fieldByKey(t reflect.Type, key string) (int, bool) {
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" && k == key {
			return i, true
		}
	}
	return 0, false
}

func keys(t reflect.Type) []string {
	var ks []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			ks = append(ks, k)
		}
	}
	return ks
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int32:
		return "a 32-bit integer"
	case reflect.Int:
		return "an integer"
	default:
		return "a " + t.Kind().String()
	}
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if resolve(m.Content[i]).Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}
