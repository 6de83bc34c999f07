package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnout/turnout/proxy/adminapi"
	"github.com/turnout/turnout/proxy/config"
)

// pauseOwner is who asks for a pause or a resume.
func pauseOwner(r adminapi.PauseRequest) adminapi.PauseOwner {
	return adminapi.PauseOwner{ID: r.Owner, Term: r.Term}
}

// AdminHandler serves the gateway's admin API:
//
//	GET  /healthz  200 once every route listener is up
//	GET  /status   what each route serves
//	GET  /metrics  Prometheus text
//	POST /restart  switch the routes in the body (if any), then re-read
//	               the configuration and serve it
//	POST /pause    hold a route's Produce requests for a planned switch
//	POST /resume   release them (at the epoch the pause was for, by the
//	               pause's owner only)
//	POST /lease    let a route's Produce requests be forwarded for a ttl
//	               (once granted, they are held whenever no lease is live)
//	POST /fence    the agents committed an epoch: hold the route's Produce
//	               requests until the route is switched to it; answered
//	               at once, the connections with a Produce forwarded
//	               before and not yet answered closed first
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
		writeJSON(w, http.StatusOK, adminapi.StatusResponse{Routes: g.Status()})
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.RestartRequest
		if decodeBody(w, r, g, &req) {
			// On an error the old configuration is still being served.
			err := g.Switch(r.Context(), req.Routes)
			if err == nil {
				g.renewSwitched(r.Context(), req.Routes)
			}
			reply(w, g, err)
		}
	})
	mux.HandleFunc("POST /pause", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.PauseRequest
		if !decodeBody(w, r, g, &req) {
			return
		}
		if ttl, ok := parseTTL(w, g, req.TTL); ok {
			reply(w, g, g.PauseProduce(r.Context(), req.Route, req.Epoch, ttl, pauseOwner(req)))
		}
	})
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.PauseRequest
		if decodeBody(w, r, g, &req) {
			reply(w, g, g.ResumeProduce(req.Route, req.Epoch, pauseOwner(req)))
		}
	})
	mux.HandleFunc("POST /lease", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.LeaseRequest
		if !decodeBody(w, r, g, &req) {
			return
		}
		if ttl, ok := parseTTL(w, g, req.TTL); ok {
			reply(w, g, g.GrantLease(r.Context(), req.Route, req.Domain, req.Epoch, ttl))
		}
	})
	mux.HandleFunc("POST /fence", func(w http.ResponseWriter, r *http.Request) {
		var req adminapi.LeaseRequest
		if decodeBody(w, r, g, &req) {
			reply(w, g, g.FenceRoute(req.Route, req.Epoch))
		}
	})
	if metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

func parseTTL(w http.ResponseWriter, g *Gateway, s string) (time.Duration, bool) {
	ttl, err := time.ParseDuration(s)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.StatusResponse{Routes: g.Status(), Error: fmt.Sprintf("ttl %q: %v", s, err)})
		return 0, false
	}
	return ttl, true
}

// renewSwitched carries the routes' leases over to the epochs the agents
// just switched them to, unless the agent gave up on the switch: as with
// GrantLease, a lease it does not count on must not be granted.
func (g *Gateway) renewSwitched(ctx context.Context, routes []adminapi.RouteSwitch) {
	for _, sw := range routes {
		if ctx.Err() != nil {
			g.log.Info("switched route's lease not carried over: the agent gave up on the switch", "route", sw.Name, "epoch", sw.Epoch)
			continue
		}
		if _, r, err := g.servedRoute(sw.Name); err == nil && r.Epoch == sw.Epoch && r.Domain == sw.Domain {
			r.fence.renewAt(sw.Epoch)
		}
	}
}

// decodeBody reads an optional JSON body into v, answering 400 when it is
// malformed.
func decodeBody(w http.ResponseWriter, r *http.Request, g *Gateway, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, adminapi.StatusResponse{Routes: g.Status(), Error: "request body: " + err.Error()})
		return false
	}
	return true
}

// reply answers a state-changing call with the routes as now served and,
// on failure, a status code that says whose fault it was.
func reply(w http.ResponseWriter, g *Gateway, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, adminapi.StatusResponse{Routes: g.Status()})
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, config.ErrStaleEpoch):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalidConfig):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnknownRoute), errors.Is(err, errBadPause), errors.Is(err, errBadLease):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, adminapi.StatusResponse{Routes: g.Status(), Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
