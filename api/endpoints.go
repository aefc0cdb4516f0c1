package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/registry"
)

// now returns the clock's time in UTC.
func (h *handler) now() time.Time { return h.cfg.Now().UTC() }

// view renders a stored endpoint for a response. It never includes a secret: create and rotate-key add
// access_key and url themselves.
func (h *handler) view(e *registry.Endpoint) apitype.Endpoint {
	now := h.now()
	v := apitype.Endpoint{
		ID:        e.ID,
		Name:      e.Name,
		Type:      string(e.Type),
		Zone:      e.Zone,
		Region:    e.Region,
		Upstreams: make([]string, 0, len(e.Instances)),
		Instances: make([]apitype.Instance, 0, len(e.Instances)),
		Sticky:    apitype.Sticky{Enabled: e.Sticky.Enabled, TTLSeconds: e.Sticky.TTLSeconds},
		Firewall: apitype.Firewall{
			Allow:     nonNil(e.Firewall.Allow),
			Deny:      nonNil(e.Firewall.Deny),
			DestAllow: e.Firewall.DestAllow,
			DestDeny:  e.Firewall.DestDeny,
		},
		RateLimit:     apitype.RateLimit{RPS: e.RateLimit.RPS, Burst: e.RateLimit.Burst},
		Balance:       e.Balance,
		ProxyProtocol: e.ProxyProtocol,
		Version:       e.Version,
		CreatedAt:     e.CreatedAt,
		UpdatedAt:     e.UpdatedAt,
	}
	if v.Balance == "" {
		v.Balance = "p2c"
	}
	for _, in := range e.Instances {
		v.Upstreams = append(v.Upstreams, in.Addr)
		v.Instances = append(v.Instances, instanceView(in))
	}
	switch e.Type {
	case registry.HTTPS:
		v.URLTemplate = h.cfg.RelayURL(e.Zone, e.Region, apitype.KeyPlaceholder)
		for _, k := range e.Keys {
			ki := apitype.KeyInfo{CreatedAt: k.CreatedAt, Active: k.ActiveAt(now)}
			if k.ExpiresAt != nil {
				t := *k.ExpiresAt
				ki.ExpiresAt = &t
			}
			v.Keys = append(v.Keys, ki)
		}
	default:
		v.Port = e.Port
		if e.Port != 0 {
			v.Address = h.cfg.TCPAddress(e.Zone, e.Region, e.Port)
		}
		mode := e.TLS.Mode
		if mode == "" {
			mode = apitype.TLSPlain
		}
		v.TLS = &apitype.TLS{Mode: mode, ClientCAPEM: e.TLS.ClientCAPEM}
		v.Limits = &apitype.Limits{MaxConns: e.Limits.MaxConns, MaxConnsPerIP: e.Limits.MaxConnsPerIP}
	}
	return v
}

func instanceView(in registry.Instance) apitype.Instance {
	return apitype.Instance{ID: in.ID, Addr: in.Addr, NodeID: in.NodeID, CreatedAt: in.CreatedAt}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// specOf returns the writable settings of e, the document a PATCH merges into.
func specOf(e *registry.Endpoint) apitype.EndpointSpec {
	s := apitype.EndpointSpec{
		Name:   e.Name,
		Type:   string(e.Type),
		Zone:   e.Zone,
		Region: e.Region,
		Sticky: apitype.Sticky{Enabled: e.Sticky.Enabled, TTLSeconds: e.Sticky.TTLSeconds},
		Firewall: apitype.Firewall{
			Allow: e.Firewall.Allow, Deny: e.Firewall.Deny, DestAllow: e.Firewall.DestAllow, DestDeny: e.Firewall.DestDeny,
		},
		RateLimit:     apitype.RateLimit{RPS: e.RateLimit.RPS, Burst: e.RateLimit.Burst},
		Balance:       e.Balance,
		ProxyProtocol: e.ProxyProtocol,
	}
	for _, in := range e.Instances {
		s.Upstreams = append(s.Upstreams, in.Addr)
	}
	if e.Type != registry.HTTPS {
		s.TLS = &apitype.TLS{Mode: e.TLS.Mode, ClientCAPEM: e.TLS.ClientCAPEM}
		s.Limits = &apitype.Limits{MaxConns: e.Limits.MaxConns, MaxConnsPerIP: e.Limits.MaxConnsPerIP}
	}
	return s
}

// applySpec copies a validated spec's settings into e. When setInstances, the instances become
// s.Upstreams: an instance whose address stays keeps its id (so sticky cookies stay valid), new
// addresses get new ids.
func applySpec(e *registry.Endpoint, s apitype.EndpointSpec, setInstances bool, now time.Time) {
	e.Name = s.Name
	e.Sticky = registry.Sticky{Enabled: s.Sticky.Enabled, TTLSeconds: s.Sticky.TTLSeconds}
	e.Firewall = registry.Firewall{
		Allow: s.Firewall.Allow, Deny: s.Firewall.Deny, DestAllow: s.Firewall.DestAllow, DestDeny: s.Firewall.DestDeny,
	}
	e.RateLimit = registry.RateLimit{RPS: s.RateLimit.RPS, Burst: s.RateLimit.Burst}
	e.Balance = s.Balance
	e.ProxyProtocol = s.ProxyProtocol
	e.Limits = registry.Limits{}
	if s.Limits != nil {
		e.Limits = registry.Limits{MaxConns: s.Limits.MaxConns, MaxConnsPerIP: s.Limits.MaxConnsPerIP}
	}
	e.TLS = registry.TLS{}
	if s.TLS != nil {
		e.TLS = registry.TLS{Mode: s.TLS.Mode, ClientCAPEM: s.TLS.ClientCAPEM}
	}
	if setInstances {
		old := make(map[string]registry.Instance, len(e.Instances))
		for _, in := range e.Instances {
			if _, dup := old[in.Addr]; !dup {
				old[in.Addr] = in
			}
		}
		e.Instances = make([]registry.Instance, 0, len(s.Upstreams))
		for _, addr := range s.Upstreams {
			in, ok := old[addr]
			if !ok {
				in = registry.Instance{ID: registry.NewID("in"), Addr: addr, CreatedAt: now}
			}
			e.Instances = append(e.Instances, in)
		}
	}
}

// withKey adds a fresh access key's secrets to an HTTPS endpoint's view.
func (h *handler) withKey(v apitype.Endpoint, key string) apitype.Endpoint {
	v.AccessKey = key
	v.URL = h.cfg.RelayURL(v.Zone, v.Region, key)
	return v
}

func (h *handler) createEndpoint(w http.ResponseWriter, r *http.Request) {
	tenant := tenantOf(r)
	var s apitype.EndpointSpec
	if err := h.decode(w, r, &s, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if s.Zone == "" {
		s.Zone = h.cfg.Zone
	}
	if s.Region == "" {
		s.Region = h.cfg.Region
	}
	if err := validateSpec(&s, true); err != nil {
		h.fail(w, r, err)
		return
	}
	now := h.now()
	e := &registry.Endpoint{TenantID: tenant, Type: registry.EndpointType(s.Type), Zone: s.Zone, Region: s.Region}
	applySpec(e, s, true, now)
	var key string
	if e.Type == registry.HTTPS {
		key = registry.NewSecret()
		e.Keys = []registry.AccessKey{{Hash: registry.HashSecret(key), CreatedAt: now}}
	}
	out, err := h.cfg.Store.CreateEndpoint(r.Context(), e)
	if err != nil {
		h.fail(w, r, storeError(err, "tenant not found", fmt.Sprintf("an endpoint named %q already exists", s.Name)))
		return
	}
	v := h.view(out)
	if key != "" {
		v = h.withKey(v, key)
	}
	w.Header().Set("Location", "/v1/endpoints/"+out.ID)
	h.reply(w, r, http.StatusCreated, v)
}

func (h *handler) listEndpoints(w http.ResponseWriter, r *http.Request) {
	eps, err := h.cfg.Store.ListEndpoints(r.Context(), tenantOf(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := apitype.EndpointList{Endpoints: make([]apitype.Endpoint, 0, len(eps))}
	for _, e := range eps {
		out.Endpoints = append(out.Endpoints, h.view(e))
	}
	h.reply(w, r, http.StatusOK, out)
}

func (h *handler) getEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tenant := tenantOf(r)
	e, err := h.cfg.Store.GetEndpoint(r.Context(), tenant, id)
	if err != nil {
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", "conflict"))
		return
	}
	h.reply(w, r, http.StatusOK, h.view(e))
}

// patchEndpoint applies a JSON merge patch (RFC 7396) to the endpoint's settings: only members present
// change, nested objects merge, arrays replace, null resets a member to its default. The merged settings
// are validated as a whole. A rate_limit object without "burst" resets burst to its default.
func (h *handler) patchEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tenant := tenantOf(r)
	b, err := h.readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	patch, err := decodePatch(b)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	_, touchesUpstreams := patch["upstreams"]
	now := h.now()
	var oldName, newName string
	out, err := h.cfg.Store.UpdateEndpoint(r.Context(), tenant, id, func(e *registry.Endpoint) error {
		base, err := toMap(specOf(e))
		if err != nil {
			return fmt.Errorf("api: patch: %w", err)
		}
		merged := mergePatch(base, patch).(map[string]any)
		if rl, ok := patch["rate_limit"].(map[string]any); ok {
			if _, hasBurst := rl["burst"]; !hasBurst {
				if m, ok := merged["rate_limit"].(map[string]any); ok {
					delete(m, "burst")
				}
			}
		}
		mb, err := json.Marshal(merged)
		if err != nil {
			return fmt.Errorf("api: patch: %w", err)
		}
		var s apitype.EndpointSpec
		if err := decodeStrict(mb, &s); err != nil {
			return err
		}
		if s.Type != "" && s.Type != string(e.Type) {
			return invalid("type", "cannot be changed (is %q); create a new endpoint instead", e.Type)
		}
		if s.Zone != "" && s.Zone != e.Zone {
			return invalid("zone", "cannot be changed (is %q)", e.Zone)
		}
		if s.Region != "" && s.Region != e.Region {
			return invalid("region", "cannot be changed (is %q)", e.Region)
		}
		s.Type, s.Zone, s.Region = string(e.Type), e.Zone, e.Region
		if err := validateSpec(&s, touchesUpstreams); err != nil {
			return err
		}
		oldName, newName = e.Name, s.Name
		applySpec(e, s, touchesUpstreams, now)
		return nil
	})
	if err != nil {
		msg := "endpoint changed concurrently; retry"
		if newName != oldName {
			msg = fmt.Sprintf("an endpoint named %q already exists", newName)
		}
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", msg))
		return
	}
	h.reply(w, r, http.StatusOK, h.view(out))
}

func (h *handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tenant := tenantOf(r)
	if err := h.cfg.Store.DeleteEndpoint(r.Context(), tenant, id); err != nil {
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", "endpoint changed concurrently; retry"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateKey issues a new access key. Without grace the old keys stop at once; with grace, old keys that
// still work get ExpiresAt = now + grace (never later than an expiry they already have). Keys already
// expired are dropped.
func (h *handler) rotateKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tenant := tenantOf(r)
	var req apitype.RotateKeyRequest
	if err := h.decode(w, r, &req, true); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.GraceSeconds < 0 || req.GraceSeconds > MaxGraceSeconds {
		h.fail(w, r, invalid("grace_seconds", "must be between 0 and %d (got %d)", MaxGraceSeconds, req.GraceSeconds))
		return
	}
	key := registry.NewSecret()
	now := h.now()
	out, err := h.cfg.Store.UpdateEndpoint(r.Context(), tenant, id, func(e *registry.Endpoint) error {
		if e.Type != registry.HTTPS {
			return &httpError{Status: http.StatusBadRequest, Code: apitype.CodeInvalidArgument,
				Message: fmt.Sprintf("endpoint %s is a %s endpoint: only https endpoints have access keys", id, e.Type)}
		}
		keys := make([]registry.AccessKey, 0, len(e.Keys)+1)
		if req.GraceSeconds > 0 {
			exp := now.Add(time.Duration(req.GraceSeconds) * time.Second)
			for _, k := range e.Keys {
				if !k.ActiveAt(now) {
					continue
				}
				if k.ExpiresAt == nil || k.ExpiresAt.After(exp) {
					t := exp
					k.ExpiresAt = &t
				}
				keys = append(keys, k)
			}
		}
		e.Keys = append(keys, registry.AccessKey{Hash: registry.HashSecret(key), CreatedAt: now})
		return nil
	})
	if err != nil {
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", "endpoint changed concurrently; retry"))
		return
	}
	h.reply(w, r, http.StatusOK, h.withKey(h.view(out), key))
}

func (h *handler) listInstances(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tenant := tenantOf(r)
	e, err := h.cfg.Store.GetEndpoint(r.Context(), tenant, id)
	if err != nil {
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", "conflict"))
		return
	}
	out := apitype.InstanceList{Instances: make([]apitype.Instance, 0, len(e.Instances))}
	for _, in := range e.Instances {
		out.Instances = append(out.Instances, instanceView(in))
	}
	h.reply(w, r, http.StatusOK, out)
}

func (h *handler) addInstance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tenant := tenantOf(r)
	var req apitype.AddInstanceRequest
	if err := h.decode(w, r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Addr == "" {
		h.fail(w, r, invalid("addr", "required: host:port"))
		return
	}
	if err := validateAddr("addr", req.Addr); err != nil {
		h.fail(w, r, err)
		return
	}
	in := registry.Instance{ID: registry.NewID("in"), Addr: req.Addr, CreatedAt: h.now()}
	_, err := h.cfg.Store.UpdateEndpoint(r.Context(), tenant, id, func(e *registry.Endpoint) error {
		for _, o := range e.Instances {
			if o.Addr == in.Addr {
				return conflict("endpoint %s already has an instance at %s (%s)", id, in.Addr, o.ID)
			}
		}
		if len(e.Instances) >= maxUpstreams {
			return conflict("endpoint %s has the maximum of %d instances", id, maxUpstreams)
		}
		e.Instances = append(e.Instances, in)
		return nil
	})
	if err != nil {
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", "endpoint changed concurrently; retry"))
		return
	}
	w.Header().Set("Location", "/v1/endpoints/"+id+"/instances/"+in.ID)
	h.reply(w, r, http.StatusCreated, instanceView(in))
}

func (h *handler) removeInstance(w http.ResponseWriter, r *http.Request) {
	id, iid := r.PathValue("id"), r.PathValue("instance_id")
	tenant := tenantOf(r)
	_, err := h.cfg.Store.UpdateEndpoint(r.Context(), tenant, id, func(e *registry.Endpoint) error {
		for i, o := range e.Instances {
			if o.ID == iid {
				e.Instances = append(e.Instances[:i:i], e.Instances[i+1:]...)
				return nil
			}
		}
		return notFound("instance %s not found on endpoint %s", iid, id)
	})
	if err != nil {
		h.fail(w, r, storeError(err, "endpoint "+id+" not found", "endpoint changed concurrently; retry"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
