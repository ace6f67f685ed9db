package sim

import (
	"net"
	"strings"
	"time"
)

// socketApp is mod_event_socket's socket application: it connects to an
// outbound event-socket server, waits for its connect, then parks the
// channel under that server's control (async mode) or runs the listener
// inline (static mode; simulated the same way).
func (c *Channel) socketApp(arg string) appResult {
	s := c.sim
	f := strings.Fields(arg)
	if len(f) == 0 {
		return appResult{}
	}
	addr := f[0]
	if !strings.Contains(addr, ":") {
		addr += ":8084"
	}
	s.mu.Lock()
	host, _, _ := net.SplitHostPort(addr)
	c.vars.set("socket_host", host)
	s.mu.Unlock()
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		s.log.Warn("socket application could not connect", "addr", addr, "uuid", c.uuid, "err", err)
		return appResult{}
	}
	conn := s.newConn(nc, true)
	conn.session, conn.sessionUUID = c, c.uuid
	for _, a := range f[1:] {
		switch strings.ToLower(a) {
		case "full":
			conn.full = true
		case "async":
			conn.asyncMode = true
		}
	}
	s.mu.Lock()
	c.controlled = append(c.controlled, conn)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); conn.serve() }()
	select {
	case <-conn.connected:
	case <-c.hungup:
		return appResult{}
	case <-conn.closed:
		return appResult{}
	}
	return c.park()
}
