package sim

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
)

// conference is a mod_conference room, enough for agent sessions: members
// join and leave, maintenance events fire, and list/kick/hup work.
type conference struct {
	name, profile, uuid string
	members             map[int]*conferenceMember
	nextID              int
}

type conferenceMember struct {
	conf *conference
	id   int
	c    *Channel
	done chan string // closed or sent the reason the member left
	// moderator: the channel's conference_member_flags had "moderator"
	// when it joined (mod_conference's MFLAG_MOD).
	moderator bool
}

// memberType is the Member-Type header of the member's events.
func (m *conferenceMember) memberType() string {
	if m.moderator {
		return "moderator"
	}
	return "member"
}

// confEvent fires a CUSTOM conference::maintenance event. Callers hold s.mu.
func (s *Sim) confEvent(cf *conference, action string, m *conferenceMember, site callerSite, extra ...event.Header) {
	s.bus.fire("CUSTOM", "conference::maintenance", func(e *eventBuilder) {
		e.file, e.fn, e.line = site.file, site.fn, site.line
		e.add("Conference-Name", cf.name)
		e.add("Conference-Domain", "127.0.0.1")
		e.add("Conference-Size", strconv.Itoa(len(cf.members)))
		e.add("Conference-Ghosts", "0")
		e.add("Conference-Profile-Name", cf.profile)
		e.add("Conference-Unique-ID", cf.uuid)
		if m != nil {
			e.uuid = m.c.uuid
			e.add("Floor", "false")
			e.headers = m.c.basicData(e.headers)
			e.headers = m.c.prof.appendTo(e.headers, "Caller-", true)
			for _, v := range m.c.vars {
				e.add("variable_"+v.Name, v.Value)
			}
			for _, kv := range [][2]string{{"Video", "false"}, {"Hear", "true"}, {"See", "true"}, {"Speak", "true"},
				{"Talking", "false"}, {"Mute-Detect", "false"}, {"Hold", "false"}, {"Member-ID", strconv.Itoa(m.id)},
				{"Member-Type", m.memberType()}, {"Member-Ghost", "false"}, {"Energy-Level", "100"}, {"Current-Energy", "0"}} {
				e.add(kv[0], kv[1])
			}
		}
		e.headers = append(e.headers, extra...)
		e.add("Action", action)
	})
}

// conferenceApp joins name[@profile] and stays until kicked or hung up.
func (c *Channel) conferenceApp(arg string) appResult {
	s := c.sim
	name, profile, _ := strings.Cut(strings.Fields(arg + " ")[0], "@")
	if profile == "" {
		profile = "default"
	}
	s.mu.Lock()
	if !c.ready() {
		s.mu.Unlock()
		return appResult{}
	}
	if !c.media {
		c.markAnswered()
	}
	cf := s.confs[name]
	if cf == nil {
		cf = &conference{name: name, profile: profile, uuid: newUUID(), members: map[int]*conferenceMember{}, nextID: s.sessionID}
		s.confs[name] = cf
		s.confEvent(cf, "conference-create", nil, callerSite{"mod_conference.c", "conference_new", 3848})
	}
	cf.nextID++
	m := &conferenceMember{conf: cf, id: cf.nextID, c: c, done: make(chan string, 1)}
	if flags, ok := c.vars.get("conference_member_flags"); ok {
		// A "|"-separated list, as conference_utils_set_mflags reads it.
		m.moderator = slices.Contains(strings.Split(flags, "|"), "moderator")
	}
	cf.members[m.id] = m
	c.conference = m
	c.vars.set("conference_name", name)
	c.vars.set("conference_member_id", strconv.Itoa(m.id))
	s.confEvent(cf, "add-member", m, callerSite{"conference_member.c", "conference_member_add", 962})
	s.mu.Unlock()

	var reason string
	select {
	case reason = <-m.done:
	case <-c.hungup:
		reason = "hangup"
	}
	s.mu.Lock()
	m.conf.remove(s, m)
	s.mu.Unlock()
	return appResult{response: reason}
}

// remove takes a member out and destroys an empty room. Callers hold s.mu.
func (cf *conference) remove(s *Sim, m *conferenceMember) {
	if _, ok := cf.members[m.id]; !ok {
		return
	}
	delete(cf.members, m.id)
	m.c.conference = nil
	s.confEvent(cf, "del-member", m, callerSite{"conference_member.c", "conference_member_del", 1355})
	if len(cf.members) == 0 {
		s.confEvent(cf, "conference-destroy", nil, callerSite{"mod_conference.c", "conference_thread_run", 863})
		delete(s.confs, cf.name)
	}
}

// leave is called when a member's channel hangs up. Callers hold s.mu.
func (m *conferenceMember) leave(c *Channel) {
	select {
	case m.done <- "hangup":
	default:
	}
}

// conferenceAPI implements `conference list`, `conference <name> list`,
// `kick <id|all>` and `hup <id|all>`. Callers hold s.mu.
func (s *Sim) conferenceAPI(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-ERR No parameters specified.\n"
	}
	if f[0] == "list" {
		var b strings.Builder
		names := make([]string, 0, len(s.confs))
		for n := range s.confs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cf := s.confs[n]
			fmt.Fprintf(&b, "+OK Conference %s (%d member%s rate: 8000 flags: running|answered|enforce_min|dynamic|exit_sound|enter_sound|json_status)\n",
				cf.name, len(cf.members), plural(len(cf.members)))
			b.WriteString(cf.list())
		}
		if b.Len() == 0 {
			return "+OK No active conferences.\n"
		}
		return b.String()
	}
	cf := s.confs[f[0]]
	if cf == nil {
		return "-ERR Conference " + f[0] + " not found\n"
	}
	if len(f) < 2 {
		return "-ERR No parameters specified.\n"
	}
	switch f[1] {
	case "list":
		return cf.list()
	case "kick", "hup":
		if len(f) < 3 {
			return "-ERR Invalid member!\n"
		}
		var targets []*conferenceMember
		if f[2] == "all" {
			for _, id := range cf.ids() {
				targets = append(targets, cf.members[id])
			}
		} else if id, err := strconv.Atoi(f[2]); err == nil && cf.members[id] != nil {
			targets = append(targets, cf.members[id])
		} else {
			return "-ERR Member: " + f[2] + " not found.\n"
		}
		var b strings.Builder
		for _, m := range targets {
			fmt.Fprintf(&b, "+OK %s %d\n", f[1], m.id)
			s.confEvent(cf, f[1]+"-member", m, callerSite{"conference_api.c", "conference_api_sub_" + f[1], 871})
			if f[1] == "hup" {
				m.c.hangup("NORMAL_CLEARING")
			} else {
				select {
				case m.done <- "kicked":
				default:
				}
			}
		}
		return b.String()
	}
	return "-ERR Unknown command: " + f[1] + "\n"
}

func (cf *conference) ids() []int {
	ids := make([]int, 0, len(cf.members))
	for id := range cf.members {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	return ids
}

// list is the `conference <name> list` body: newest member first.
func (cf *conference) list() string {
	var b strings.Builder
	for _, id := range cf.ids() {
		m := cf.members[id]
		flags := "hear|speak"
		if m.moderator {
			flags += "|moderator"
		}
		fmt.Fprintf(&b, "%d;%s;%s;%s;%s;%s;0;0;100\n", m.id, m.c.name, m.c.uuid, m.c.prof.cidName, m.c.prof.cidNumber, flags)
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
