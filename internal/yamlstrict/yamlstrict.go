// Package yamlstrict decodes a configuration file into Go structs the way a
// user needs it checked: unknown and repeated keys are errors, every problem
// names the file, the line and the setting, and all problems are reported at
// once rather than the first alone.
package yamlstrict

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file. Decoder.Err joins several of
// them with errors.Join; errors.As finds each.
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

// Decoder reads one file and collects its problems. Validation code reports
// further problems through Errorf, which finds the line of the setting.
type Decoder struct {
	file string
	data []byte
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

// NewDecoder returns a Decoder for data; file names it in messages.
func NewDecoder(file string, data []byte) *Decoder {
	return &Decoder{file: file, data: data, lines: map[string]int{}, budget: len(data) + 1}
}

// File is the name the decoder gives the file in messages.
func (d *Decoder) File() string { return d.file }

// Document returns the top node of the file, which must hold exactly one
// YAML document, or nil after reporting why not. empty says what a file
// without a document should hold.
func (d *Decoder) Document(empty string) *yaml.Node {
	if line, msg := checkText(d.data); msg != "" {
		d.At(line, "", "%s", msg)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(d.data))
	var doc, next yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.At(1, "", "the file is empty; %s", empty)
		} else {
			d.yamlError(err)
		}
		return nil
	}
	switch err := dec.Decode(&next); {
	case err == nil:
		d.At(next.Line, "", "a second YAML document starts here; the file must hold one")
		return nil
	case err != io.EOF:
		d.yamlError(err)
		return nil
	}
	root := Resolve(doc.Content[0]) // yaml.v3 gives every document one node
	d.lines[""] = root.Line
	return root
}

// At reports a problem on line with the setting at path.
func (d *Decoder) At(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Errorf reports a problem with the setting at path, on its line if the file
// has it and otherwise on the line of the closest enclosing setting.
func (d *Decoder) Errorf(path, format string, args ...any) {
	d.At(d.Line(path), path, format, args...)
}

// Unique reports a name (the setting at path) that is missing, saying what
// it is for, or that is already used; seen maps every name so far to the
// line where it was defined, and learns this one, defined on line.
func (d *Decoder) Unique(seen map[string]int, path, kind, name string, line int, whatFor string) {
	switch first, dup := seen[name]; {
	case name == "":
		d.Errorf(path, "missing; %s", whatFor)
	case dup:
		d.Errorf(path, "%s %q is already defined on line %d", kind, name, first)
	default:
		seen[name] = line
	}
}

// Line is the line of the setting at path, or of the closest enclosing
// setting the file has.
func (d *Decoder) Line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.lines[""]
		}
		path = path[:i]
	}
}

// SetLine records that the setting at path is on line, for settings the
// caller reads without Decode.
func (d *Decoder) SetLine(path string, line int) { d.lines[path] = line }

// Has reports whether the file sets path, so that an explicit zero can be
// told from a missing setting.
func (d *Decoder) Has(path string) bool {
	_, ok := d.lines[path]
	return ok
}

// Failed reports whether any problem has been found.
func (d *Decoder) Failed() bool { return len(d.errs) > 0 }

// Err returns every problem found, in line order, or nil.
func (d *Decoder) Err() error {
	if len(d.errs) == 0 {
		return nil
	}
	errs := make([]error, 0, len(d.errs)+1)
	for _, e := range slices.SortedStableFunc(slices.Values(d.errs), func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) }) {
		errs = append(errs, e)
	}
	if len(d.data) > 0 && d.data[len(d.data)-1] != '\n' {
		errs = append(errs, &Error{File: d.file, Line: bytes.Count(d.data, []byte("\n")) + 1,
			Msg: "the file does not end with a newline; was it cut short while being written?"})
	}
	return errors.Join(errs...)
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

// yamlError reports a yaml.v3 syntax error. yaml.v3 leaves the line out of
// messages about the first line, and out of the one about an unknown anchor.
func (d *Decoder) yamlError(err error) {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(yamlParserProblems, msg) {
		line++
	} else if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(d.data, []byte("*"+m[1])); i >= 0 {
			line = bytes.Count(d.data[:i], []byte("\n")) + 1
		}
	}
	d.At(max(line, 1), "", "invalid YAML: %s", msg)
}

// Decode sets what ptr points to from n as yaml.v3 would, but rejects
// unknown and repeated keys, records the line of every setting and sets the
// Line fields (int, tagged yaml:"-") of structs to the line of their key or
// list item. Settings the file leaves out or sets to null keep the value ptr
// points to, so a caller can fill in defaults first. Durations are Go
// durations (1s, 1m30s); a bare number is refused because its unit would be
// a guess.
func (d *Decoder) Decode(n *yaml.Node, ptr any, path string) {
	d.decode(n, reflect.ValueOf(ptr).Elem(), path, n.Line)
}

var durationType = reflect.TypeFor[time.Duration]()

func (d *Decoder) decode(n *yaml.Node, v reflect.Value, path string, line int) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.At(n.Line, path, "aliases repeat settings more often than any configuration needs")
		}
		return
	}
	n = Resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	switch {
	case v.Type() == durationType:
		d.decodeDuration(n, v, path)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
		if f := v.FieldByName("Line"); f.IsValid() {
			f.SetInt(int64(line))
		}
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.At(n.Line, path, "want a list, got %s", describe(n, path))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			d.lines[ipath] = item.Line
			d.decode(item, v.Index(i), ipath, item.Line)
		}
	case v.Kind() == reflect.Map: // free-form settings
		if err := n.Decode(v.Addr().Interface()); err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			if secretPath(path) {
				msg = "want a mapping, got " + describe(n, path) // yaml.v3 quotes the value
			}
			d.At(n.Line, path, "%s", msg)
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(v.Addr().Interface()) != nil {
			d.At(n.Line, path, "want %s, got %s", describeType(v.Type()), describe(n, path))
		}
	}
}

func (d *Decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.At(n.Line, path, "want a duration such as 1s or 1m30s, got %s", describe(n, path))
		return
	}
	// The unit of a bare number would be a guess.
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil || n.Tag == "!!int" || n.Tag == "!!float" {
		what := n.Value
		if secretPath(path) {
			what = describe(n, path)
		}
		d.At(n.Line, path, "%s has no unit; use a unit, e.g. 1s, 500ms or 2m", what)
		return
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil {
		d.At(n.Line, path, "want a duration such as 1s or 1m30s, got %s", describe(n, path))
		return
	}
	v.SetInt(int64(t))
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.At(n.Line, path, "want a mapping, got %s", describe(n, path))
		return
	}
	t := v.Type()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := Resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.At(k.Line, path, "want a key name, got %s", describe(k, path))
			continue
		}
		f, ok := fieldByKey(t, k.Value)
		if !ok {
			// password: {hunter2} is a mapping whose key is the secret.
			name := strconv.Quote(k.Value)
			if secretPath(path) {
				name = "(not shown)"
			}
			d.At(k.Line, path, "unknown key %s (allowed: %s)", name, strings.Join(keys(t), ", "))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.At(k.Line, path, "key %q is repeated (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fpath := k.Value
		if path != "" {
			fpath = path + "." + k.Value
		}
		d.lines[fpath] = k.Line
		d.decode(n.Content[i+1], v.Field(f), fpath, k.Line)
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
	case reflect.Int, reflect.Int64:
		return "an integer"
	default:
		return "a " + t.Kind().String()
	}
}

// DescribeNode says what n is, for messages: a mapping, a list, nothing, or
// the quoted value.
func DescribeNode(n *yaml.Node) string {
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

// describe is DescribeNode for the value of the setting at path, except
// that it never shows the value of a secret: messages reach logs and HTTP
// replies.
func describe(n *yaml.Node, path string) string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" && secretPath(path) {
		return "a " + scalarKind(n) + " (not shown)"
	}
	return DescribeNode(n)
}

func scalarKind(n *yaml.Node) string {
	switch n.Tag {
	case "!!int", "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	default:
		return "string"
	}
}

// secretPath reports whether a setting on path, or one enclosing it, holds
// a secret: its key ends in password, secret or token, whatever the case
// (password, keyPassword, sasl.password.value, ...).
func secretPath(path string) bool {
	for key := range strings.FieldsFuncSeq(path, func(r rune) bool { return r == '.' || r == '[' }) {
		key = strings.ToLower(key)
		if strings.HasSuffix(key, "password") || strings.HasSuffix(key, "secret") || strings.HasSuffix(key, "token") {
			return true
		}
	}
	return false
}

// Resolve follows an alias to the node it names.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// MapValue returns the value of key in mapping m, or nil.
func MapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if Resolve(m.Content[i]).Value == key {
			return Resolve(m.Content[i+1])
		}
	}
	return nil
}
