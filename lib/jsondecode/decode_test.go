package jsondecode

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// same fails t unless Unmarshal and json.Unmarshal both fail on data into
// a new T, or both succeed with equal values.
func same[T any](t *testing.T, data []byte) {
	t.Helper()
	var want, got T
	wantErr := json.Unmarshal(data, &want)
	gotErr := Unmarshal(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q into %T: encoding/json: %v; jsondecode: %v", data, got, wantErr, gotErr)
	}
	if wantErr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%q into %T:\nencoding/json: %+v\njsondecode:    %+v", data, got, want, got)
	}
}

// The engines' configs (../shared/oci on the development machine) and
// runc spec's, with a user namespace.
func engineConfigs(t testing.TB) map[string][]byte {
	paths, _ := filepath.Glob("testdata/*.json")
	if len(paths) == 0 {
		t.Fatal("no testdata")
	}
	out := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	return out
}

func TestEngineConfigs(t *testing.T) {
	for name, data := range engineConfigs(t) {
		t.Run(name, func(t *testing.T) {
			switch {
			case strings.HasPrefix(name, "exec-process"):
				same[specs.Process](t, data)
			case strings.HasPrefix(name, "update-resources"):
				same[specs.LinuxResources](t, data)
			default:
				same[specs.Spec](t, data)
				var s specs.Spec
				if err := Unmarshal(data, &s); err != nil || s.Process == nil || len(s.Process.Args) == 0 || s.Linux == nil {
					t.Fatalf("decoded %+v, %v", s, err)
				}
			}
		})
	}
}

// Inputs where encoding/json's rules are easy to get wrong.
var cases = []string{
	`{}`, ` {} `, `null`, `[]`, `""`, `1`, `{"ociVersion":"1.0.2"}`,
	// Nulls: pointers, slices and maps become nil, the rest stays.
	`{"process":null,"hostname":null,"mounts":null,"annotations":null}`,
	`{"process":{"args":["a"]},"process":null}`,
	// Empty arrays are empty slices, not nil.
	`{"mounts":[],"process":{"args":[]}}`,
	// A key twice: the second decodes into what the first made.
	`{"process":{"cwd":"/a"},"process":{"args":["x"]}}`,
	`{"mounts":[{"destination":"/a","type":"bind"},{"destination":"/b"}],"mounts":[{"source":"/s"}]}`,
	`{"annotations":{"a":"1"},"annotations":{"b":"2"}}`,
	// Keys matched ignoring case; the exact name first.
	`{"HOSTNAME":"h","Process":{"Args":["x"],"CWD":"/"}}`,
	`{"hostName":"a","hostname":"b"}`, `{"hostname":"b","hostName":"a"}`,
	"{\"hoſtname\":\"k\"}", "{\"\u212aey\":1}",
	// Unknown keys, with any value.
	`{"unknown":{"a":[1,2,{"b":null}],"c":true},"hostname":"h"}`,
	// Embedded structs (LinuxWeightDevice has LinuxBlockIODevice).
	`{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":8,"minor":0,"weight":10}],"throttleReadBpsDevice":[{"major":1,"minor":2,"rate":3}]}}}}`,
	// Numbers.
	`{"process":{"user":{"uid":0,"gid":4294967295}}}`,
	`{"process":{"user":{"uid":4294967296}}}`, `{"process":{"user":{"uid":-1}}}`,
	`{"process":{"user":{"uid":1.0}}}`, `{"process":{"user":{"uid":1e2}}}`, `{"process":{"user":{"uid":-0}}}`,
	`{"process":{"oomScoreAdj":-1000}}`, `{"linux":{"resources":{"memory":{"limit":-1,"swappiness":18446744073709551615}}}}`,
	`{"linux":{"resources":{"memory":{"swappiness":18446744073709551616}}}}`,
	`{"linux":{"resources":{"cpu":{"realtimePeriod":1}}}}`,
	`{"process":{"user":{"uid":01}}}`, `{"process":{"user":{"uid":1.}}}`, `{"process":{"user":{"uid":.5}}}`,
	`{"process":{"user":{"uid":+1}}}`, `{"process":{"user":{"uid":1e}}}`, `{"process":{"user":{"uid":-}}}`,
	// Mismatched kinds.
	`{"process":{"args":"sh"}}`, `{"process":[]}`, `{"hostname":1}`, `{"hostname":true}`, `{"mounts":{}}`,
	`{"process":{"terminal":"yes"}}`, `{"process":{"user":{"uid":"0"}}}`, `{"annotations":{"a":1}}`,
	`[1]`, `"x"`, `true`,
	// A mismatch before a syntax error.
	`{"hostname":1,"x":tru}`,
	// Strings.
	`{"hostname":"a\"b\\c\/d\b\f\n\r\t"}`, `{"hostname":"\u00e9\u4e2d"}`,
	`{"hostname":"\ud83d\ude00"}`, `{"hostname":"\ud83d"}`, `{"hostname":"\ud83dx"}`, `{"hostname":"\ude00\ud83d"}`,
	`{"hostname":"\ud83d\u0041"}`, `{"hostname":"\u12"}`, `{"hostname":"\x"}`, "{\"hostname\":\"a\x01\"}",
	"{\"hostname\":\"\xff\xfe\"}", "{\"hostname\":\"caf\xc3\xa9\"}", "{\"hostname\":\"\xc3\"}",
	// Syntax.
	``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `{"a":1 "b":2}`, `{} x`, `{}{}`, `nul`, `nulll`,
	`{"hostname":"h"`, `{'a':1}`, `{"a":[}`, `{"a":tRue}`, `{"process":{"args":["a",]}}`,
	// Delegated: an interface (windows.credentialSpec).
	`{"windows":{"credentialSpec":{"a":[1,"b",null]}}}`, `{"windows":{"credentialSpec":"x"}}`,
}

func TestCases(t *testing.T) {
	for _, c := range cases {
		same[specs.Spec](t, []byte(c))
	}
}

func TestSliceGrowsIntoStaleElements(t *testing.T) {
	// encoding/json decodes into elements past a slice's length within
	// its capacity; jsondecode must too.
	data := []byte(`{"mounts":[{"destination":"/a"},{"destination":"/b","type":"t"}],"mounts":[{"source":"1"}],"mounts":[{"source":"2"},{"source":"3"}]}`)
	same[specs.Spec](t, data)
}

func TestDeepNesting(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001)
	same[specs.Spec](t, []byte(deep))
	ok := strings.Repeat(`[`, 9999) + strings.Repeat("]", 9999)
	same[specs.Spec](t, []byte(`{"x":`+ok+`}`))
}

func TestErrorNamesThePath(t *testing.T) {
	var s specs.Spec
	err := Unmarshal([]byte(`{"mounts":[{"destination":"/a"},{"options":[1]}]}`), &s)
	if err == nil || err.Error() != "mounts[1].options[0]: a number cannot be decoded into a Go string" {
		t.Fatalf("got %v", err)
	}
	err = Unmarshal([]byte(`{"hostname": tru}`), &s)
	var serr *SyntaxError
	if !errors.As(err, &serr) || serr.Offset != 13 {
		t.Fatalf("got %v", err)
	}
}

// Other kinds and types, delegated or not.
type other struct {
	Bytes   []byte          `json:"bytes"`
	Array   [2]int          `json:"array"`
	IntKeys map[int]string  `json:"intKeys"`
	Str     int             `json:"str,string"`
	Float   float32         `json:"float"`
	Any     any             `json:"any"`
	Raw     json.RawMessage `json:"raw"`
	Named   map[named]named `json:"named"`
	PP      **string        `json:"pp"`
	Skip    string          `json:"-"`
	NoTag   string
	Inner   `json:"inner"`
	//lint:ignore U1000 a key that names an unexported field sets nothing
	unexp string
	M     map[string]*Inner `json:"m"`
}

type named string

type Inner struct {
	X int `json:"x"`
}

func TestOtherTypes(t *testing.T) {
	for _, c := range []string{
		`{"bytes":"aGVsbG8="}`, `{"bytes":"!"}`, `{"array":[1,2,3]}`, `{"array":[1]}`, `{"intKeys":{"1":"a"}}`,
		`{"intKeys":{"x":"a"}}`, `{"str":"12"}`, `{"str":12}`, `{"float":1.5}`, `{"float":1e39}`,
		`{"any":[1,{"a":null}]}`, `{"raw":{"a":[1, 2]}}`, `{"raw":null}`, `{"named":{"k":"v"}}`,
		`{"pp":"x"}`, `{"pp":null}`, `{"Skip":"x","-":"d","notag":"n"}`, `{"inner":{"x":1},"x":2}`,
		`{"unexp":"u"}`, `{"m":{"a":{"x":1},"b":null}}`,
	} {
		same[other](t, []byte(c))
	}
}

func FuzzSpec(f *testing.F) {
	for _, data := range engineConfigs(f) {
		f.Add(data)
	}
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		same[specs.Spec](t, data)
	})
}

// A struct this package leaves to encoding/json (here for a ",string"
// field) is left to it behind a pointer too: delegated looks only at the
// pointer's element type's methods and kind, not at its fields.
type quotedField struct {
	N int    `json:"n,string"`
	S string `json:"s"`
}

type pointsToDelegated struct {
	P  *quotedField  `json:"p"`
	PP **quotedField `json:"pp"`
	L  []*quotedField
}

func TestDelegatedStructBehindPointer(t *testing.T) {
	for _, c := range []string{
		`{"p":{"s":"x","n":"5"}}`, `{"pp":{"s":"x"}}`, `{"L":[{"s":"x"},null]}`, `{"p":{"n":5}}`, `{"p":null}`,
	} {
		same[pointsToDelegated](t, []byte(c))
	}
	same[*quotedField](t, []byte(`{"s":"x","n":"7"}`))
}

// json.Number is a string kind encoding/json treats apart: it takes a
// number, and a string only if it holds one.
type numbers struct {
	N  json.Number
	P  *json.Number
	NS []json.Number
	M  map[string]json.Number
}

func TestNumber(t *testing.T) {
	for _, c := range []string{
		`{"N":12}`, `{"N":-1.5e3}`, `{"N":"12"}`, `{"N":"x"}`, `{"N":""}`, `{"N":null}`,
		`{"P":7}`, `{"NS":[1,"2"]}`, `{"NS":["a"]}`, `{"M":{"a":1}}`,
	} {
		same[numbers](t, []byte(c))
	}
}

// An unexported embedded struct with a name in its tag is a field of that
// name to encoding/json, not one to skip as unexported.
type unexportedInner struct{ X int }

type embedsUnexported struct {
	unexportedInner `json:"in"`
	Y               int
}

type embedsUnexportedUntagged struct {
	unexportedInner
	Y int
}

func TestUnexportedEmbeddedStruct(t *testing.T) {
	same[embedsUnexported](t, []byte(`{"in":{"X":1},"Y":2}`))
	same[embedsUnexported](t, []byte(`{"X":1}`))
	same[embedsUnexportedUntagged](t, []byte(`{"X":1,"Y":2}`))
	same[embedsUnexportedUntagged](t, []byte(`{"unexportedInner":{"X":1}}`))
}

// An error is one line whatever the keys on its path hold (a map's keys
// are anyone's), and a key is not taken for an index.
func TestErrorIsOneLine(t *testing.T) {
	for in, want := range map[string]string{
		`{"annotations":{"a\nb\u001b[31m":1}}`:           `annotations."a\nb\x1b[31m": a number cannot be decoded into a Go string`,
		`{"annotations":{"[0]":1}}`:                      `annotations."[0]": a number cannot be decoded into a Go string`,
		`{"annotations":{"":1}}`:                         `annotations."": a number cannot be decoded into a Go string`,
		`{"linux":{"sysctl":{"net.ipv4.ip_forward":1}}}`: `linux.sysctl.net.ipv4.ip_forward: a number cannot be decoded into a Go string`,
	} {
		var s specs.Spec
		if err := Unmarshal([]byte(in), &s); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", in, err, want)
		}
	}
}

type selfPointer *selfPointer

func TestSelfPointerType(t *testing.T) {
	for _, c := range []string{`{"p":null}`, `{}`} { // encoding/json never ends on {"p":{}} either
		same[struct {
			P selfPointer `json:"p"`
		}](t, []byte(c))
	}
}
