package caps

import (
	"testing"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

func TestDockerDefaultMask(t *testing.T) {
	if got := DockerDefault.Hex(); got != "00000000a80425fb" {
		t.Errorf("DockerDefault = %s, want 00000000a80425fb (docker's CapEff)", got)
	}
	if n := len(DockerDefault.Values()); n != 14 {
		t.Errorf("DockerDefault has %d capabilities, want 14", n)
	}
}

func TestParseName(t *testing.T) {
	for _, in := range []string{"CAP_NET_RAW", "cap_net_raw", "NET_RAW", "net_raw", "Net_Raw", " net_raw "} {
		v, err := ParseName(in)
		if err != nil || v != cap.NET_RAW {
			t.Errorf("ParseName(%q) = %v, %v; want cap_net_raw", in, v, err)
		}
	}
	for _, in := range []string{"", "cap_", "net_rawx", "13", "cap_13", "all"} {
		if v, err := ParseName(in); err == nil {
			t.Errorf("ParseName(%q) = %v, want an error", in, v)
		}
	}
}

func TestParseList(t *testing.T) {
	cases := []struct {
		in   string
		want List
	}{
		{"", List{}},
		{"none", List{}},
		{"all", List{All: true}},
		{"ALL", List{All: true}},
		{"chown,CAP_KILL", List{Set: Of(cap.CHOWN, cap.KILL)}},
		{"kill,,kill", List{Set: Of(cap.KILL)}},
	}
	for _, c := range cases {
		got, err := ParseList(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseList(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if _, err := ParseList("chown,bogus"); err == nil || err.Error() != `unknown capability "bogus"` {
		t.Errorf("ParseList(chown,bogus) error = %v", err)
	}
}

func TestSetString(t *testing.T) {
	if got := Of(cap.KILL, cap.CHOWN).String(); got != "cap_chown,cap_kill" {
		t.Errorf("got %q", got)
	}
	if got := Set(0).String(); got != "none" {
		t.Errorf("empty set prints %q", got)
	}
	if got := Of(cap.CHOWN, cap.CHECKPOINT_RESTORE).Hex(); got != "0000010000000001" {
		t.Errorf("hex %q", got)
	}
}

func TestPodmanDefault(t *testing.T) {
	if got := PodmanDefault.Hex(); got != "00000000800405fb" {
		t.Errorf("PodmanDefault = %s, want 00000000800405fb (podman's CapBnd)", got)
	}
}
