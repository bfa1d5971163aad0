package server

import (
	"github.com/labstack/echo/v4"
)

// routeDPO routes the DPO API behind the token check and the audit of every call
// (audited, audit.go); each resource's handlers are in a file of their own.
func (s *Server) routeDPO(e *echo.Echo) {
	g := e.Group("/v1/dpo", s.audited(bearerSecret))
	get(g, "/verify", s.handleVerify, storeWide)
	get(g, "/consents/:consent_id", s.handleProof)
	get(g, "/snapshots/:fingerprint", s.handleSnapshot)
	get(g, "/audit", s.handleAudit)
	get(g, "/records", s.handleRecords)
	get(g, "/export", s.handleExport)
	get(g, "/stats", s.handleStats)
	g.DELETE("/consents/:consent_id", s.handleErase)
	get(g, "/backup", s.handleBackup, storeWide)
}
