package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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

// PauseRequest is the body of POST /pause and POST /resume (which reads
// only the route).
type PauseRequest struct {
	Route string `json:"route"`
	// Epoch is the route's epoch the pause is meant for.
	Epoch int32 `json:"epoch"`
	// TTL is a Go duration, at most MaxPause.
	TTL string `json:"ttl"`
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
//	POST /pause    hold a route's Produce requests for a planned switch
//	POST /resume   release them
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
		if decodeBody(w, r, g, &req) {
			// On an error the old configuration is still being served.
			reply(w, g, g.Switch(r.Context(), req.Routes))
		}
	})
	mux.HandleFunc("POST /pause", func(w http.ResponseWriter, r *http.Request) {
		var req PauseRequest
		if !decodeBody(w, r, g, &req) {
			return
		}
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, StatusResponse{Routes: g.Status(), Error: fmt.Sprintf("ttl %q: %v", req.TTL, err)})
			return
		}
		reply(w, g, g.PauseProduce(r.Context(), req.Route, req.Epoch, ttl))
	})
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, r *http.Request) {
		var req PauseRequest
		if decodeBody(w, r, g, &req) {
			reply(w, g, g.ResumeProduce(req.Route))
		}
	})
	if metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

// decodeBody reads an optional JSON body into v, answering 400 when it is
// malformed.
func decodeBody(w http.ResponseWriter, r *http.Request, g *Gateway, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, StatusResponse{Routes: g.Status(), Error: "request body: " + err.Error()})
		return false
	}
	return true
}

// reply answers a state-changing call with the routes as now served and,
// on failure, a status code that says whose fault it was.
func reply(w http.ResponseWriter, g *Gateway, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, StatusResponse{Routes: g.Status()})
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, config.ErrStaleEpoch):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalidConfig):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnknownRoute), errors.Is(err, errBadPause):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, StatusResponse{Routes: g.Status(), Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
