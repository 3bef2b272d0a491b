package server

import (
	"net"
	"sync"
)

// listenTCP opens the stream listener of a listen.* key: the socket of
// that name handed over by systemd or by the previous process of an
// upgrade, else a new one on addr.
func (s *Server) listenTCP(key, addr string) (net.Listener, error) {
	ln, ok, err := s.sockets.Listener(key)
	if err != nil {
		return nil, err
	}
	if ok {
		s.log.Info("listening on a socket handed over", "listen", key, "addr", ln.Addr().String())
	} else if ln, err = net.Listen("tcp", addr); err != nil {
		return nil, err
	}
	s.recordListener(key, ln)
	return &gatedListener{Listener: ln, stop: s.stopAccepting, done: make(chan struct{})}, nil
}

// gatedListener stops accepting when stop is closed (an upgrade: the new
// process accepts from then on) and stays open until Close; a connection
// already being accepted is still returned and served.
type gatedListener struct {
	net.Listener
	stop <-chan struct{}
	done chan struct{}
	once sync.Once
}

func (g *gatedListener) Accept() (net.Conn, error) {
	select {
	case <-g.stop:
		<-g.done
		return nil, net.ErrClosed
	default:
	}
	return g.Listener.Accept()
}

func (g *gatedListener) Close() error {
	g.once.Do(func() { close(g.done) })
	return g.Listener.Close()
}

// listenUDP is listenTCP for a datagram socket.
func (s *Server) listenUDP(key, addr string) (net.PacketConn, error) {
	pc, ok, err := s.sockets.PacketConn(key)
	if err != nil {
		return nil, err
	}
	if ok {
		s.log.Info("listening on a socket handed over", "listen", key, "addr", pc.LocalAddr().String(), "net", "udp")
	} else if pc, err = net.ListenPacket("udp", addr); err != nil {
		return nil, err
	}
	s.recordPacketConn(key, pc)
	return pc, nil
}
