package server

import (
	"log/slog"
	"reflect"
)

// reloadRest applies, from a new valid config, what can change while
// connections stay open: the certificate files (read again even when
// their names did not change: a renewal rewrites them in place) and the
// log level. It returns the config sections now fully applied; an error
// (a certificate that does not load) applies nothing.
func (s *Server) reloadRest(cfg *Config) (applied []string, err error) {
	if !s.cfg.acmeOn() && !cfg.acmeOn() && cfg.TLS.CertFile != "" && s.cert.Load() != nil {
		if err := s.loadCert(cfg); err != nil {
			return nil, err
		}
		applied = append(applied, "tls")
		s.log.Info("config reloaded: certificate read again", "cert_file", cfg.TLS.CertFile)
	}
	if s.logLevel != nil {
		var level slog.Level
		if level.UnmarshalText([]byte(cfg.Log.Level)) == nil {
			s.logLevel.Set(level)
		}
		a, b := s.cfg.Log, cfg.Log
		a.Level, b.Level = "", ""
		if reflect.DeepEqual(a, b) {
			applied = append(applied, "log")
		}
	}
	return applied, nil
}
