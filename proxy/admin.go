package proxy

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatusResponse is the body of GET /status and POST /restart.
type StatusResponse struct {
	Routes []RouteStatus `json:"routes"`
	Error  string        `json:"error,omitempty"`
}

// AdminHandler serves the gateway's admin API:
//
//	GET  /healthz  200 once every route listener is up
//	GET  /status   what each route serves
//	GET  /metrics  Prometheus text
//	POST /restart  re-read the configuration and serve it
func AdminHandler(g *Gateway, m *Metrics, metrics bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !g.Ready() {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, StatusResponse{Routes: g.Status()})
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Restart(r.Context()); err != nil {
			// The old configuration is still being served.
			code := http.StatusInternalServerError
			if errors.Is(err, ErrInvalidConfig) {
				code = http.StatusUnprocessableEntity
			}
			writeJSON(w, code, StatusResponse{Routes: g.Status(), Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, StatusResponse{Routes: g.Status()})
	})
	if metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
