package server

import (
	"net"
)

// listenTCP opens the stream listener of a listen.* key: the socket of
// that name handed over by systemd or by the previous process of an
// upgrade, else a new one on addr.
func (s *Server) listenTCP(key, addr string) (net.Listener, error) {
	ln, ok, err := s.sockets.Listener(key)
	if ok || err != nil {
		if err == nil {
			s.log.Info("listening on a socket handed over", "listen", key, "addr", ln.Addr().String())
		}
		return ln, err
	}
	return net.Listen("tcp", addr)
}

// listenUDP is listenTCP for a datagram socket.
func (s *Server) listenUDP(key, addr string) (net.PacketConn, error) {
	pc, ok, err := s.sockets.PacketConn(key)
	if ok || err != nil {
		if err == nil {
			s.log.Info("listening on a socket handed over", "listen", key, "addr", pc.LocalAddr().String(), "net", "udp")
		}
		return pc, err
	}
	return net.ListenPacket("udp", addr)
}
