package ejbcasim

import "net/http"

type statusResponse struct {
	Status   string `json:"status"`
	Version  string `json:"version"`
	Revision string `json:"revision"`
}

// handleStatus serves GET /v1/certificate/status and /v1/ca/status. Like
// EJBCA's, it needs no credentials: it proves reachability only.
func (s *Sim) handleStatus(w http.ResponseWriter, _ *http.Request, _ Fault) {
	writeJSON(w, http.StatusOK, statusResponse{Status: "OK", Version: "1.0", Revision: s.revision})
}

// handleStatusV2 serves GET /v2/certificate/status.
func (s *Sim) handleStatusV2(w http.ResponseWriter, _ *http.Request, _ Fault) {
	writeJSON(w, http.StatusOK, statusResponse{Status: "OK", Version: "2.0", Revision: s.revision})
}
