package ext4pack

import (
	"reflect"
	"testing"

	"github.com/ext4pack/ext4pack/agents"
	"github.com/ext4pack/ext4pack/tarflat"
)

// TestGuestImage: what tarflat learnt reaches agents whole, and the init
// names and flavours, which guestImage copies as they are, are the same
// words in both packages.
func TestGuestImage(t *testing.T) {
	for _, pair := range [][2]string{
		{tarflat.InitNone, agents.InitNone},
		{tarflat.InitSystemd, agents.InitSystemd},
		{tarflat.InitOpenRC, agents.InitOpenRC},
		{tarflat.InitRunit, agents.InitRunit},
		{tarflat.InitBusybox, agents.InitBusybox},
		{tarflat.InitSysvinit, agents.InitSysvinit},
		{tarflat.InitExt4packInit, agents.InitExt4pack},
		{tarflat.InitUnknown, agents.InitUnknown},
		{tarflat.RunitVoid, agents.RunitVoid},
		{tarflat.RunitDebian, agents.RunitDebian},
		{tarflat.OpenRCNoBoot, agents.OpenRCNoBoot},
	} {
		if pair[0] != pair[1] {
			t.Errorf("tarflat says %q where agents says %q", pair[0], pair[1])
		}
	}
	info := tarflat.Info{Distro: "alpine", NetTool: "busybox", Init: tarflat.InitSystem{Name: tarflat.InitOpenRC,
		Path: "/bin/busybox", Inittab: []byte("::sysinit:/sbin/openrc sysinit\n"), HasInittab: true,
		Flavor: tarflat.OpenRCNoBoot, Why: "/etc/inittab runs /sbin/openrc"}}
	want := agents.Image{Distro: "alpine", HasNetTool: true, Init: agents.InitSystem{Name: agents.InitOpenRC,
		Path: "/bin/busybox", Inittab: []byte("::sysinit:/sbin/openrc sysinit\n"), HasInittab: true,
		Flavor: agents.OpenRCNoBoot, Why: "/etc/inittab runs /sbin/openrc"}}
	if got := guestImage(info); !reflect.DeepEqual(got, want) {
		t.Errorf("guestImage:\ngot  %+v\nwant %+v", got, want)
	}
	// Every field of tarflat's InitSystem is copied: one added there
	// must be added here too.
	if n := reflect.TypeOf(tarflat.InitSystem{}).NumField(); n != reflect.TypeOf(agents.InitSystem{}).NumField() {
		t.Errorf("tarflat.InitSystem has %d fields, agents.InitSystem %d", n, reflect.TypeOf(agents.InitSystem{}).NumField())
	}
	if got := guestImage(tarflat.Info{NetTool: "ip"}); !got.HasNetTool {
		t.Error(`NetTool "ip" is not a network tool`)
	}
	if got := guestImage(tarflat.Info{}); got.HasNetTool {
		t.Error("no NetTool is a network tool")
	}
}
