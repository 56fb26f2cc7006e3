package mount

import (
	"fmt"
	"strings"

	"barco/lib/chain"
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

var msNames = []chain.Flag[uintptr]{
	{Bit: unix.MS_RDONLY, Name: "MS_RDONLY"},
	{Bit: unix.MS_NOSUID, Name: "MS_NOSUID"},
	{Bit: unix.MS_NODEV, Name: "MS_NODEV"},
	{Bit: unix.MS_NOEXEC, Name: "MS_NOEXEC"},
	{Bit: unix.MS_SYNCHRONOUS, Name: "MS_SYNCHRONOUS"},
	{Bit: unix.MS_REMOUNT, Name: "MS_REMOUNT"},
	{Bit: unix.MS_MANDLOCK, Name: "MS_MANDLOCK"},
	{Bit: unix.MS_DIRSYNC, Name: "MS_DIRSYNC"},
	{Bit: unix.MS_NOSYMFOLLOW, Name: "MS_NOSYMFOLLOW"},
	{Bit: unix.MS_NOATIME, Name: "MS_NOATIME"},
	{Bit: unix.MS_NODIRATIME, Name: "MS_NODIRATIME"},
	{Bit: unix.MS_BIND, Name: "MS_BIND"},
	{Bit: unix.MS_MOVE, Name: "MS_MOVE"},
	{Bit: unix.MS_REC, Name: "MS_REC"},
	{Bit: unix.MS_SILENT, Name: "MS_SILENT"},
	{Bit: unix.MS_UNBINDABLE, Name: "MS_UNBINDABLE"},
	{Bit: unix.MS_PRIVATE, Name: "MS_PRIVATE"},
	{Bit: unix.MS_SLAVE, Name: "MS_SLAVE"},
	{Bit: unix.MS_SHARED, Name: "MS_SHARED"},
	{Bit: unix.MS_RELATIME, Name: "MS_RELATIME"},
	{Bit: unix.MS_STRICTATIME, Name: "MS_STRICTATIME"},
	{Bit: unix.MS_LAZYTIME, Name: "MS_LAZYTIME"},
}

// FlagNames spells MS_* flags as "MS_BIND|MS_REC".
func FlagNames(flags uintptr) string { return chain.FlagNames(flags, msNames) }

var attrNames = []chain.Flag[uint64]{
	{Bit: unix.MOUNT_ATTR_RDONLY, Name: "MOUNT_ATTR_RDONLY"},
	{Bit: unix.MOUNT_ATTR_NOSUID, Name: "MOUNT_ATTR_NOSUID"},
	{Bit: unix.MOUNT_ATTR_NODEV, Name: "MOUNT_ATTR_NODEV"},
	{Bit: unix.MOUNT_ATTR_NOEXEC, Name: "MOUNT_ATTR_NOEXEC"},
	{Bit: unix.MOUNT_ATTR_NOATIME, Name: "MOUNT_ATTR_NOATIME"},
	{Bit: unix.MOUNT_ATTR_STRICTATIME, Name: "MOUNT_ATTR_STRICTATIME"},
	{Bit: unix.MOUNT_ATTR_NODIRATIME, Name: "MOUNT_ATTR_NODIRATIME"},
	{Bit: unix.MOUNT_ATTR_IDMAP, Name: "MOUNT_ATTR_IDMAP"},
	{Bit: unix.MOUNT_ATTR_NOSYMFOLLOW, Name: "MOUNT_ATTR_NOSYMFOLLOW"},
}

// AttrNames spells MOUNT_ATTR_* attributes as FlagNames does MS_* flags.
func AttrNames(attr uint64) string { return chain.FlagNames(attr, attrNames) }
