package mount

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// etcFile is a file every container gets in /etc, as Docker makes it: its
// own copy, bound on the image's, that goes with the container.
type etcFile struct {
	name string // in /etc
	data []byte
}

// etcFiles are the files cfg asks for: /etc/hostname and /etc/hosts for
// --hosts NAME, /etc/resolv.conf copied from the host's --resolv-conf FILE
// (read now, before pivot_root).
func etcFiles(cfg *Config) ([]etcFile, error) {
	var files []etcFile
	if cfg.Hosts != "" {
		files = append(files,
			etcFile{"hostname", []byte(cfg.Hosts + "\n")},
			etcFile{"hosts", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + cfg.Hosts + "\n")})
	}
	if cfg.ResolvConf != "" {
		data, err := os.ReadFile(cfg.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("--resolv-conf: %w", err)
		}
		files = append(files, etcFile{"resolv.conf", data})
	}
	return files, nil
}

// writeEtcFiles writes files into a new small tmpfs and returns it as a
// detached mount, for bindEtcFiles to bind from.
func writeEtcFiles(files []etcFile) (int, error) {
	fd, err := newMount("tmpfs", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC,
		[][2]string{{"size", "64k"}, {"mode", "0755"}})
	if err != nil {
		return -1, fmt.Errorf("tmpfs for /etc files: %w", err)
	}
	for _, f := range files {
		if err := writeAt(fd, f.name, f.data); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

func writeAt(dir int, name string, data []byte) error {
	fd, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: "/etc/" + name, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, data); err != nil {
		return &os.PathError{Op: "write", Path: "/etc/" + name, Err: err}
	}
	return unix.Fchmod(fd, 0o644)
}

// bindEtcFiles binds each file of the tmpfs src on /etc/NAME, made if
// missing. A file a read-only root lacks, or that the container's root may
// not make, is left out: there is nowhere to bind it.
func (r *Root) bindEtcFiles(root, src int, files []etcFile) error {
	for _, f := range files {
		clone, err := unix.OpenTree(src, f.name, unix.OPEN_TREE_CLONE|openTreeCloexec)
		if err != nil {
			return &os.PathError{Op: "open_tree", Path: "/etc/" + f.name, Err: err}
		}
		err = r.attach(root, clone, "/etc/"+f.name, inRoot, false)
		unix.Close(clone)
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) {
			r.log.Debugf("no /etc/%s: the root has none, and one cannot be made: %v", f.name, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}
