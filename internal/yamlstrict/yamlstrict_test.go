package yamlstrict

import (
	"strings"
	"testing"
	"time"
)

// The proxy/config and policy tests cover the decoder through real files;
// these cover what neither file exercises alone.
func TestDecodeDuration(t *testing.T) {
	tests := []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{"1s", time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"-250ms", -250 * time.Millisecond, ""},
		{"1", 0, "line 1: d: 1 has no unit; use a unit, e.g. 1s, 500ms or 2m"},
		{"1.5", 0, "1.5 has no unit"},
		{`"30"`, 0, "30 has no unit"},
		{"0", 0, "0 has no unit"},
		{"soon", 0, `line 1: d: want a duration such as 1s or 1m30s, got "soon"`},
		{"{s: 1}", 0, "want a duration such as 1s or 1m30s, got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			var v struct {
				D time.Duration `yaml:"d"`
			}
			dec := NewDecoder("", []byte("d: "+tt.value+"\n"))
			dec.Decode(dec.Document("want d"), &v, "")
			err := dec.Err()
			switch {
			case tt.wantErr == "" && (err != nil || v.D != tt.want):
				t.Errorf("got %v, %v; want %v", v.D, err, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestHasAndDefaults(t *testing.T) {
	type settings struct {
		A int    `yaml:"a"`
		B int    `yaml:"b"`
		C string `yaml:"c"`
	}
	v := settings{A: 7, B: 7, C: "default"}
	dec := NewDecoder("f.yaml", []byte("a: 0\nc:\n"))
	dec.Decode(dec.Document("want a"), &v, "")
	if err := dec.Err(); err != nil {
		t.Fatal(err)
	}
	if v != (settings{A: 0, B: 7, C: "default"}) || !dec.Has("a") || dec.Has("b") || !dec.Has("c") {
		t.Errorf("got %+v, has a %v, b %v, c %v; want an explicit 0 kept, missing and null settings left alone",
			v, dec.Has("a"), dec.Has("b"), dec.Has("c"))
	}
}

// Err can be asked twice without repeating the hint about a cut file.
func TestErrTwice(t *testing.T) {
	dec := NewDecoder("f.yaml", []byte("a: [1"))
	dec.Document("want a")
	first, second := dec.Err(), dec.Err()
	if first == nil || first.Error() != second.Error() || strings.Count(first.Error(), "cut short") != 1 {
		t.Errorf("first:\n%v\nsecond:\n%v", first, second)
	}
}

// A secret written where a mapping, a list or another type is wanted must
// not be quoted back: the messages reach logs and HTTP replies.
func TestSecretsNotShown(t *testing.T) {
	type pw struct {
		File  string `yaml:"file"`
		Value string `yaml:"value"`
	}
	var v struct {
		Password    pw                `yaml:"password"`
		KeyPassword *pw               `yaml:"keyPassword"`
		APIToken    []string          `yaml:"apiToken"`
		Secret      int               `yaml:"clientSecret"`
		Extra       map[string]string `yaml:"dbPassword"`
		Wait        time.Duration     `yaml:"waitToken"`
		Plain       pw                `yaml:"plain"`
	}
	doc := "password: hunter2\nkeyPassword: {s3cr3t}\napiToken: tok3n\nclientSecret: sesame\ndbPassword: opensesame\nwaitToken: 12345\nplain: visible\n"
	dec := NewDecoder("f.yaml", []byte(doc))
	dec.Decode(dec.Document("want settings"), &v, "")
	err := dec.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"hunter2", "s3cr3t", "tok3n", "sesame", "12345"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows the secret %q:\n%v", s, err)
		}
	}
	for _, want := range []string{
		`f.yaml:1: password: want a mapping, got a string (not shown)`,
		`f.yaml:2: keyPassword: unknown key (not shown) (allowed: file, value)`,
		`f.yaml:3: apiToken: want a list, got a string (not shown)`,
		`f.yaml:4: clientSecret: want an integer, got a string (not shown)`,
		`f.yaml:5: dbPassword: want a mapping, got a string (not shown)`,
		`f.yaml:6: waitToken: a number (not shown) has no unit`,
		`f.yaml:7: plain: want a mapping, got "visible"`, // not a secret
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
