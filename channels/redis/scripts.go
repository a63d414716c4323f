package redis

import (
	"embed"

	"github.com/redis/rueidis"
)

// The transition scripts, one file each in scripts/, with common.lua prepended: each decides one
// change of the cluster's state atomically (see the comment at the top of each file).
//
//go:embed scripts/*.lua
var scriptFiles embed.FS

type scriptSet struct {
	join, leave, evict, due, heartbeat, register, connect, disconnect, admit, release, lease, list, members, cacheSet *rueidis.Lua
}

func loadScripts() scriptSet {
	common := read("common.lua")
	s := func(name string) *rueidis.Lua { return rueidis.NewLuaScript(common + "\n" + read(name)) }
	return scriptSet{
		join: s("join.lua"), leave: s("leave.lua"), evict: s("evict.lua"), due: s("due.lua"),
		heartbeat: s("heartbeat.lua"), register: s("register.lua"), connect: s("connect.lua"),
		disconnect: s("disconnect.lua"), admit: s("admit.lua"), release: s("release.lua"), lease: s("lease.lua"), list: s("list.lua"),
		members: s("members.lua"), cacheSet: s("cacheset.lua"),
	}
}

func read(name string) string {
	b, err := scriptFiles.ReadFile("scripts/" + name)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return string(b)
}

// keys names what the scripts name; common.lua's akey is the same scheme: prefix:app:kind[:name].
type keys struct{ prefix string }

func (k keys) app(app, kind string) string { return k.prefix + ":" + app + ":" + kind }
func (k keys) of(app, kind, name string) string {
	return k.prefix + ":" + app + ":" + kind + ":" + name
}
func (k keys) pubsub(app, channel string) string { return k.prefix + ":m:" + app + ":" + channel }
func (k keys) probe(node string) string          { return k.prefix + ":probe:" + node }
func (k keys) global(kind string) string         { return k.prefix + ":" + kind }
