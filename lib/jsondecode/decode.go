// Package jsondecode decodes JSON into Go values with the results of
// encoding/json's Unmarshal, at a small part of its cost on the first call.
//
// encoding/json builds a decoder for every struct type it meets the first
// time it meets it: field lists, name maps, a sort, interface checks. A
// long-running program pays that once; barco's OCI commands run once per
// container, and on the runtime spec's types that first call took 1.9 ms
// of the 26 ms of a `barco run -b` on the development VM, where this
// package takes 0.6. It walks the types with a linear search over their
// fields instead, and leaves to encoding/json every value it does not
// decode the same way itself: interfaces, types with their own
// UnmarshalJSON or UnmarshalText, arrays, byte slices, json.Number, maps
// without string keys, structs with fields tagged ",string". Its tests
// compare the two on the runtime spec's types, by fuzzing as well.
package jsondecode

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Unmarshal decodes data into the value v points to. It succeeds and
// fails where json.Unmarshal does and leaves v as json.Unmarshal would
// after a success; its error messages are its own.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("jsondecode: Unmarshal into %T: not a non-nil pointer", v)
	}
	d := decoder{data: data}
	d.skipSpace()
	err := d.value(rv.Elem())
	if err == nil {
		d.skipSpace()
		if d.off < len(d.data) {
			err = d.syntaxError("data after the top-level value")
		}
	}
	var f *fieldError
	if errors.As(err, &f) {
		// encoding/json checks the syntax of the whole input before
		// it decodes: a syntax error after a mismatch is the one it
		// reports, and the message should not depend on the order.
		if serr := checkValid(data); serr != nil {
			return serr
		}
	}
	return err
}

// SyntaxError is JSON that is not valid.
type SyntaxError struct {
	Offset int // of the byte where the input stopped being JSON
	msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.msg)
}

// fieldError is a valid JSON value the Go value cannot hold, at path.
type fieldError struct {
	path []string // innermost first
	err  error
}

func (e *fieldError) Error() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		s := e.path[i]
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return e.err.Error()
	}
	return b.String() + ": " + e.err.Error()
}

func (e *fieldError) Unwrap() error { return e.err }

func atPath(err error, elem string) error {
	var f *fieldError
	if errors.As(err, &f) {
		f.path = append(f.path, elem)
		return f
	}
	return err
}

// pathKey is an object's key as an error's path shows it: quoted if it
// holds what would break the message's line or could be taken for an
// index ("[0]") or nothing.
func pathKey(key string) string {
	if q := strconv.Quote(key); key == "" || key[0] == '[' || q[1:len(q)-1] != key {
		return q
	}
	return key
}

func mismatch(what string, t reflect.Type) error {
	return &fieldError{err: fmt.Errorf("%s cannot be decoded into a Go %s", what, t)}
}

type decoder struct {
	data  []byte
	off   int
	depth int
}

func (d *decoder) syntaxError(msg string) error {
	if d.off >= len(d.data) {
		return &SyntaxError{Offset: len(d.data), msg: "unexpected end of input"}
	}
	return &SyntaxError{Offset: d.off, msg: msg}
}

func (d *decoder) skipSpace() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// value decodes the value at d.off, which is not a space, into v.
func (d *decoder) value(v reflect.Value) error {
	if info(v.Type()).delegate {
		return d.delegate(v)
	}
	switch d.peek() {
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice:
			v.SetZero()
		}
		return nil
	case 't', 'f':
		b := d.peek() == 't'
		word := "false"
		if b {
			word = "true"
		}
		if err := d.literal(word); err != nil {
			return err
		}
		v = allocate(v)
		if v.Kind() != reflect.Bool {
			return mismatch("a boolean", v.Type())
		}
		v.SetBool(b)
		return nil
	case '"':
		s, err := d.string()
		if err != nil {
			return err
		}
		v = allocate(v)
		if v.Kind() != reflect.String {
			return mismatch("a string", v.Type())
		}
		v.SetString(s)
		return nil
	case '{':
		return d.object(allocate(v))
	case '[':
		return d.array(allocate(v))
	default:
		num, err := d.number()
		if err != nil {
			return err
		}
		return setNumber(allocate(v), num)
	}
}

// allocate follows v through pointers, making those that are nil, as
// encoding/json does for any value but null.
func allocate(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	return v
}

// delegate has encoding/json decode the value at d.off into v.
func (d *decoder) delegate(v reflect.Value) error {
	start := d.off
	if err := d.skipValue(); err != nil {
		return err
	}
	if !v.CanAddr() {
		return &fieldError{err: fmt.Errorf("cannot decode into an unaddressable %s", v.Type())}
	}
	if err := json.Unmarshal(d.data[start:d.off], v.Addr().Interface()); err != nil {
		return &fieldError{err: err}
	}
	return nil
}

func setNumber(v reflect.Value, num []byte) error {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return mismatch("the number "+string(num), v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil || v.OverflowUint(n) {
			return mismatch("the number "+string(num), v.Type())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(string(num), v.Type().Bits())
		if err != nil || v.OverflowFloat(n) {
			return mismatch("the number "+string(num), v.Type())
		}
		v.SetFloat(n)
	default:
		return mismatch("a number", v.Type())
	}
	return nil
}

func (d *decoder) object(v reflect.Value) error {
	var ti *typeInfo
	switch v.Kind() {
	case reflect.Struct:
		ti = info(v.Type())
		if ti.delegate {
			// Reached through a pointer: value's check saw only the
			// pointer type, whose delegated looks at methods and kinds,
			// not at the fields structFields refuses.
			return d.delegate(v)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	default:
		return mismatch("an object", v.Type())
	}
	if d.depth++; d.depth > maxDepth {
		return d.syntaxError("nested too deeply")
	}
	defer func() { d.depth-- }()
	d.off++ // {
	d.skipSpace()
	if d.peek() == '}' {
		d.off++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.syntaxError("want a string for an object's key")
		}
		key, err := d.string()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.peek() != ':' {
			return d.syntaxError("want ':' after an object's key")
		}
		d.off++
		d.skipSpace()
		if ti != nil {
			if f := ti.field(key); f != nil {
				err = d.value(fieldByIndex(v, f.index))
			} else {
				err = d.skipValue()
			}
		} else {
			elem := reflect.New(v.Type().Elem()).Elem()
			if err = d.value(elem); err == nil {
				v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
			}
		}
		if err != nil {
			return atPath(err, pathKey(key))
		}
		d.skipSpace()
		switch d.peek() {
		case ',':
			d.off++
			d.skipSpace()
		case '}':
			d.off++
			return nil
		default:
			return d.syntaxError("want ',' or '}' in an object")
		}
	}
}

// fieldByIndex is v.FieldByIndex, which holds for the embedded structs
// typeInfo follows: never through a pointer.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}

func (d *decoder) array(v reflect.Value) error {
	if v.Kind() != reflect.Slice {
		return mismatch("an array", v.Type())
	}
	if d.depth++; d.depth > maxDepth {
		return d.syntaxError("nested too deeply")
	}
	defer func() { d.depth-- }()
	d.off++ // [
	d.skipSpace()
	// As encoding/json: into the slice's own elements, those within its
	// capacity too (a key given twice decodes into what the first one
	// made), then cut to the array's length.
	i := 0
	if d.peek() == ']' {
		d.off++
	} else {
		for {
			if i >= v.Cap() {
				v.Grow(1)
			}
			if i >= v.Len() {
				v.SetLen(i + 1)
			}
			if err := d.value(v.Index(i)); err != nil {
				return atPath(err, "["+strconv.Itoa(i)+"]")
			}
			i++
			d.skipSpace()
			if d.peek() == ',' {
				d.off++
				d.skipSpace()
				continue
			}
			if d.peek() == ']' {
				d.off++
				break
			}
			return d.syntaxError("want ',' or ']' in an array")
		}
	}
	if i < v.Len() {
		v.SetLen(i)
	}
	if i == 0 {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	return nil
}

// skipValue checks the syntax of the value at d.off and moves past it.
func (d *decoder) skipValue() error {
	switch c := d.peek(); {
	case c == 'n':
		return d.literal("null")
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == '"':
		_, err := d.string()
		return err
	case c == '{' || c == '[':
		return d.skipContainer()
	default:
		_, err := d.number()
		return err
	}
}

func (d *decoder) skipContainer() error {
	if d.depth++; d.depth > maxDepth {
		return d.syntaxError("nested too deeply")
	}
	defer func() { d.depth-- }()
	isObject := d.peek() == '{'
	closer := byte(']')
	if isObject {
		closer = '}'
	}
	d.off++
	d.skipSpace()
	if d.peek() == closer {
		d.off++
		return nil
	}
	for {
		if isObject {
			if d.peek() != '"' {
				return d.syntaxError("want a string for an object's key")
			}
			if _, err := d.string(); err != nil {
				return err
			}
			d.skipSpace()
			if d.peek() != ':' {
				return d.syntaxError("want ':' after an object's key")
			}
			d.off++
			d.skipSpace()
		}
		if err := d.skipValue(); err != nil {
			return err
		}
		d.skipSpace()
		switch d.peek() {
		case ',':
			d.off++
			d.skipSpace()
		case closer:
			d.off++
			return nil
		default:
			return d.syntaxError("want ',' or '" + string(closer) + "'")
		}
	}
}

func (d *decoder) literal(word string) error {
	if len(d.data)-d.off < len(word) || string(d.data[d.off:d.off+len(word)]) != word {
		return d.syntaxError("not a JSON value")
	}
	d.off += len(word)
	return nil
}

// number checks the number at d.off by JSON's grammar and returns it.
func (d *decoder) number() ([]byte, error) {
	start := d.off
	digits := func() int {
		n := 0
		for d.off < len(d.data) && d.data[d.off] >= '0' && d.data[d.off] <= '9' {
			d.off++
			n++
		}
		return n
	}
	if d.peek() == '-' {
		d.off++
	}
	switch c := d.peek(); {
	case c == '0':
		d.off++
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, d.syntaxError("not a JSON value")
	}
	if d.peek() == '.' {
		d.off++
		if digits() == 0 {
			return nil, d.syntaxError("want a digit after the decimal point")
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.off++
		if c := d.peek(); c == '+' || c == '-' {
			d.off++
		}
		if digits() == 0 {
			return nil, d.syntaxError("want a digit in the exponent")
		}
	}
	return d.data[start:d.off], nil
}

// string checks and unquotes the string at d.off. As encoding/json, it
// replaces each byte that is not UTF-8 and each unpaired surrogate with
// U+FFFD.
func (d *decoder) string() (string, error) {
	d.off++ // "
	start := d.off
	// The common case: no escapes, all ASCII.
	for d.off < len(d.data) {
		c := d.data[d.off]
		if c == '"' {
			s := string(d.data[start:d.off])
			d.off++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.off++
	}
	b := append([]byte(nil), d.data[start:d.off]...)
	for d.off < len(d.data) {
		c := d.data[d.off]
		switch {
		case c == '"':
			d.off++
			return string(b), nil
		case c < 0x20:
			return "", d.syntaxError("a control character in a string")
		case c == '\\':
			d.off++
			if d.off >= len(d.data) {
				return "", d.syntaxError("")
			}
			e := d.data[d.off]
			d.off++
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := d.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if d.off+1 < len(d.data) && d.data[d.off] == '\\' && d.data[d.off+1] == 'u' {
						save := d.off
						d.off += 2
						if r2, err = d.hex4(); err != nil {
							return "", err
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
						} else {
							// Not a pair: the second escape is read
							// on its own.
							d.off = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				d.off--
				return "", d.syntaxError("an invalid escape in a string")
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.off++
		default:
			r, size := utf8.DecodeRune(d.data[d.off:])
			d.off += size
			b = utf8.AppendRune(b, r)
		}
	}
	return "", d.syntaxError("")
}

func (d *decoder) hex4() (rune, error) {
	if d.off+4 > len(d.data) {
		for d.off < len(d.data) && isHex(d.data[d.off]) {
			d.off++
		}
		return 0, d.syntaxError("want four hex digits after \\u")
	}
	var r rune
	for _, c := range d.data[d.off : d.off+4] {
		if !isHex(c) {
			return 0, d.syntaxError("want four hex digits after \\u")
		}
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
		d.off++
	}
	return r, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// checkValid reports the first syntax error in data, if any.
func checkValid(data []byte) error {
	d := decoder{data: data}
	d.skipSpace()
	if err := d.skipValue(); err != nil {
		return err
	}
	d.skipSpace()
	if d.off < len(d.data) {
		return d.syntaxError("data after the top-level value")
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType      = reflect.TypeFor[json.Number]()
)

// typeInfo is what the decoder needs of a type, made once per type.
type typeInfo struct {
	// delegate: encoding/json decodes values of this type.
	delegate bool
	fields   []field // of a struct, in encoding/json's order
}

type field struct {
	name  string
	index []int
}

// field is the struct field key names, as encoding/json matches them:
// the exact name, else the first whose name equals key ignoring case.
func (ti *typeInfo) field(key string) *field {
	for i := range ti.fields {
		if ti.fields[i].name == key {
			return &ti.fields[i]
		}
	}
	for i := range ti.fields {
		if strings.EqualFold(ti.fields[i].name, key) {
			return &ti.fields[i]
		}
	}
	return nil
}

var (
	infosMu sync.Mutex
	infos   = map[reflect.Type]*typeInfo{}
)

func info(t reflect.Type) *typeInfo {
	infosMu.Lock()
	defer infosMu.Unlock()
	if ti, ok := infos[t]; ok {
		return ti
	}
	ti := &typeInfo{delegate: delegated(t)}
	infos[t] = ti
	if !ti.delegate && t.Kind() == reflect.Struct {
		var ok bool
		if ti.fields, ok = structFields(t, nil); !ok {
			ti.delegate, ti.fields = true, nil
		}
	}
	return ti
}

// delegated reports whether encoding/json is to decode values of type t
// (or the values they point to: a pointer's element type decides).
func delegated(t reflect.Type) bool {
	for depth := 0; t.Kind() == reflect.Pointer; depth++ {
		if depth == 64 {
			return true // a pointer type that points to itself: type P *P
		}
		t = t.Elem()
	}
	if t == numberType {
		return true // a string that takes a number, and checks a string
	}
	if t.NumMethod() > 0 || reflect.PointerTo(t).NumMethod() > 0 {
		pt := reflect.PointerTo(t)
		if pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Struct,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return false
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 // base64, or bytes with their own methods
	case reflect.Map:
		k := t.Key()
		return k.Kind() != reflect.String || reflect.PointerTo(k).Implements(textUnmarshaler)
	}
	return true // interfaces, arrays, and what encoding/json refuses
}

// structFields lists the fields of struct type t that JSON keys name, the
// fields of embedded structs in their place, as encoding/json orders
// them. It returns false for what this package leaves to encoding/json:
// a field tagged ",string", an embedded pointer, two fields of one name
// (encoding/json's rules of dominance), a name outside letters, digits
// and "_-." (its rules of valid tags).
func structFields(t reflect.Type, index []int) ([]field, bool) {
	var fields []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") {
			return nil, false
		}
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				return nil, false
			}
			if ft.Kind() == reflect.Struct {
				inner, ok := structFields(ft, idx)
				if !ok {
					return nil, false
				}
				fields = append(fields, inner...)
				continue
			}
		}
		if !sf.IsExported() {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if sf.Anonymous && ft.Kind() == reflect.Struct {
				// Tagged with a name: to encoding/json a field of that
				// name, decoded through the unexported one.
				return nil, false
			}
			continue
		}
		if name == "" {
			name = sf.Name
		}
		for _, c := range name {
			if !(c == '_' || c == '-' || c == '.' || c < utf8.RuneSelf && (c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')) {
				return nil, false
			}
		}
		fields = append(fields, field{name: name, index: idx})
	}
	for i := range fields {
		for j := i + 1; j < len(fields); j++ {
			if fields[i].name == fields[j].name {
				return nil, false
			}
		}
	}
	return fields, true
}
