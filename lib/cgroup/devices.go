package cgroup

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceRule allows one device, or a class of them, as a line of the cgroup
// v1 devices.allow file: "c 1:3 rwm".
type DeviceRule struct {
	Type   byte   // 'c', 'b', or 'a' for both
	Major  int64  // -1 for any
	Minor  int64  // -1 for any
	Access string // some of "rwm"
}

func (r DeviceRule) String() string {
	return fmt.Sprintf("%c %s:%s %s", r.Type, wildcard(r.Major), wildcard(r.Minor), r.Access)
}

func wildcard(n int64) string {
	if n < 0 {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

// DefaultDevices are the devices a container may use by default, as runc
// allows them: any device node may be made (m), and only null, zero, full,
// random, urandom, tty, ptmx and the pts may be opened.
var DefaultDevices = []DeviceRule{
	{'c', -1, -1, "m"},
	{'b', -1, -1, "m"},
	{'c', 1, 3, "rwm"},    // null
	{'c', 1, 5, "rwm"},    // zero
	{'c', 1, 7, "rwm"},    // full
	{'c', 1, 8, "rwm"},    // random
	{'c', 1, 9, "rwm"},    // urandom
	{'c', 5, 0, "rwm"},    // tty
	{'c', 5, 2, "rwm"},    // ptmx
	{'c', 136, -1, "rwm"}, // pts
}

// ParseDeviceRule reads a rule as devices.allow takes it: "c 10:200 rwm",
// "b 8:* r", "a *:* m".
func ParseDeviceRule(s string) (DeviceRule, error) {
	bad := fmt.Errorf("not a device rule: %q (want TYPE MAJOR:MINOR ACCESS, like 'c 10:200 rwm')", s)
	f := strings.Fields(s)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("cba", f[0]) {
		return DeviceRule{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return DeviceRule{}, bad
	}
	r := DeviceRule{Type: f[0][0], Access: f[2]}
	var err error
	if r.Major, err = parseDevNum(maj); err != nil {
		return DeviceRule{}, bad
	}
	if r.Minor, err = parseDevNum(min); err != nil {
		return DeviceRule{}, bad
	}
	if r.Access == "" || strings.Trim(r.Access, "rwm") != "" {
		return DeviceRule{}, bad
	}
	return r, nil
}

func parseDevNum(s string) (int64, error) {
	if s == "*" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return int64(n), err
}
