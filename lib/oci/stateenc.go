package oci

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// encode is json.Marshal(s), without its first call's cost: encoding/json
// builds an encoder for each struct type it meets (see package
// jsondecode), half a millisecond of every OCI command that saves a
// state. The config is written as create read it (json.Marshal compacts
// it). TestStateEncodesAsEncodingJSON holds the two to the same output.
func (s *State) encode() ([]byte, error) {
	b := make([]byte, 0, 512+len(s.Config))
	b = append(b, `{"ociVersion":`...)
	b = appendString(b, s.Version)
	b = append(b, `,"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	if s.Pid != 0 {
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(s.Pid), 10)
	}
	b = append(b, `,"bundle":`...)
	b = appendString(b, s.Bundle)
	if len(s.Annotations) > 0 {
		b = append(b, `,"annotations":{`...)
		keys := make([]string, 0, len(s.Annotations))
		for k := range s.Annotations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, s.Annotations[k])
		}
		b = append(b, '}')
	}
	if s.InitStart != 0 {
		b = append(b, `,"initStart":`...)
		b = strconv.AppendUint(b, s.InitStart, 10)
	}
	created, err := s.Created.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b = append(b, `,"created":`...)
	b = append(b, created...)
	b = append(b, `,"owner":`...)
	b = appendString(b, s.Owner)
	if len(s.CgroupDirs) > 0 {
		b = append(b, `,"cgroupDirs":[`...)
		for i, d := range s.CgroupDirs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, d)
		}
		b = append(b, ']')
	}
	if s.Rootfs != "" {
		b = append(b, `,"rootfs":`...)
		b = appendString(b, s.Rootfs)
	}
	if s.Hooks != nil {
		// Rare enough to leave to encoding/json.
		hooks, err := json.Marshal(s.Hooks)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"hooks":`...)
		b = append(b, hooks...)
	}
	b = append(b, `,"config":`...)
	if s.Config == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, s.Config...)
	}
	return append(b, '}'), nil
}

// appendString is encoding/json's string encoding: HTML's <, > and &
// escaped, U+2028 and U+2029 too, a byte that is not UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
