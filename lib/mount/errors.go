package mount

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// MountError is a failed mount(2), printed with its flags by name as runc
// does: "mount tmpfs on /dev (tmpfs, MS_NOSUID|MS_STRICTATIME, mode=755): ...".
type MountError struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	Err                    error
}

func (e *MountError) Error() string {
	var detail []string
	if e.FSType != "" {
		detail = append(detail, e.FSType)
	}
	detail = append(detail, FlagNames(e.Flags))
	if e.Data != "" {
		detail = append(detail, e.Data)
	}
	source := e.Source
	if source == "" {
		source = "none"
	}
	return fmt.Sprintf("mount %s on %s (%s): %v", source, e.Target, strings.Join(detail, ", "), e.Err)
}

func (e *MountError) Unwrap() error { return e.Err }

var msNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "MS_RDONLY"},
	{unix.MS_NOSUID, "MS_NOSUID"},
	{unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"},
	{unix.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"},
	{unix.MS_REMOUNT, "MS_REMOUNT"},
	{unix.MS_MANDLOCK, "MS_MANDLOCK"},
	{unix.MS_DIRSYNC, "MS_DIRSYNC"},
	{unix.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
	{unix.MS_NOATIME, "MS_NOATIME"},
	{unix.MS_NODIRATIME, "MS_NODIRATIME"},
	{unix.MS_BIND, "MS_BIND"},
	{unix.MS_MOVE, "MS_MOVE"},
	{unix.MS_REC, "MS_REC"},
	{unix.MS_SILENT, "MS_SILENT"},
	{unix.MS_UNBINDABLE, "MS_UNBINDABLE"},
	{unix.MS_PRIVATE, "MS_PRIVATE"},
	{unix.MS_SLAVE, "MS_SLAVE"},
	{unix.MS_SHARED, "MS_SHARED"},
	{unix.MS_RELATIME, "MS_RELATIME"},
	{unix.MS_STRICTATIME, "MS_STRICTATIME"},
	{unix.MS_LAZYTIME, "MS_LAZYTIME"},
}

// FlagNames spells MS_* flags as "MS_BIND|MS_REC"; unknown bits are
// printed in hex, no flag at all as "0".
func FlagNames(flags uintptr) string {
	var names []string
	for _, f := range msNames {
		if flags&f.flag != 0 {
			names = append(names, f.name)
			flags &^= f.flag
		}
	}
	if flags != 0 {
		names = append(names, fmt.Sprintf("%#x", flags))
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

var attrNames = []struct {
	attr uint64
	name string
}{
	{unix.MOUNT_ATTR_RDONLY, "MOUNT_ATTR_RDONLY"},
	{unix.MOUNT_ATTR_NOSUID, "MOUNT_ATTR_NOSUID"},
	{unix.MOUNT_ATTR_NODEV, "MOUNT_ATTR_NODEV"},
	{unix.MOUNT_ATTR_NOEXEC, "MOUNT_ATTR_NOEXEC"},
	{unix.MOUNT_ATTR_NOATIME, "MOUNT_ATTR_NOATIME"},
	{unix.MOUNT_ATTR_STRICTATIME, "MOUNT_ATTR_STRICTATIME"},
	{unix.MOUNT_ATTR_NODIRATIME, "MOUNT_ATTR_NODIRATIME"},
	{unix.MOUNT_ATTR_IDMAP, "MOUNT_ATTR_IDMAP"},
	{unix.MOUNT_ATTR_NOSYMFOLLOW, "MOUNT_ATTR_NOSYMFOLLOW"},
}

// AttrNames spells MOUNT_ATTR_* attributes as FlagNames does MS_* flags.
func AttrNames(attr uint64) string {
	var names []string
	for _, a := range attrNames {
		if attr&a.attr != 0 {
			names = append(names, a.name)
			attr &^= a.attr
		}
	}
	if attr != 0 {
		names = append(names, fmt.Sprintf("%#x", attr))
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}
