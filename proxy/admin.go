package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnout/turnout/proxy/config"
)

// RestartRequest is the optional body of POST /restart: routes to switch
// before the configuration is read again.
type RestartRequest struct {
	Routes []RouteSwitch `json:"routes,omitempty"`
}

// RouteSwitch points a route at a domain at an epoch.
type RouteSwitch struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Epoch  int32  `json:"epoch"`
}

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
//	POST /restart  switch the routes in the body (if any), then re-read
//	               the configuration and serve it
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
		var req RestartRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, StatusResponse{Routes: g.Status(), Error: "request body: " + err.Error()})
			return
		}
		if err := g.Switch(r.Context(), req.Routes); err != nil {
			// The old configuration is still being served.
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, config.ErrStaleEpoch):
				code = http.StatusConflict
			case errors.Is(err, ErrInvalidConfig):
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
