package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/registry"
)

// Bootstrap prepares a fresh registry for its first API call: it creates the tenant (an existing tenant
// with that id is kept) and a new admin API token for it, stored by hash, and returns the token. The
// portal's dev mode uses it; the token is the caller's to print or save, never to log.
func Bootstrap(ctx context.Context, store registry.Store, tenantID, tenantName string) (token string, err error) {
	if !isLabel(tenantID, "_") {
		return "", fmt.Errorf("api: bootstrap: invalid tenant id %q", tenantID)
	}
	if tenantName == "" {
		tenantName = tenantID
	}
	err = store.CreateTenant(ctx, registry.Tenant{ID: tenantID, Name: tenantName})
	if err != nil && !errors.Is(err, registry.ErrConflict) {
		return "", fmt.Errorf("api: bootstrap: create tenant %s: %w", tenantID, err)
	}
	token = registry.NewSecret()
	t := registry.APIToken{ID: registry.NewID("tk"), TenantID: tenantID, Name: "bootstrap",
		Hash: registry.HashSecret(token), Admin: true}
	if err := store.CreateToken(ctx, t); err != nil {
		return "", fmt.Errorf("api: bootstrap: create token: %w", err)
	}
	return token, nil
}

// validText checks a free-text name: not blank, at most max bytes, no control characters.
func validText(field, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return invalid(field, "required")
	}
	if len(s) > max {
		return invalid(field, "at most %d bytes", max)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalid(field, "must not contain control characters")
	}
	return nil
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	t := principalOf(r).token
	out := apitype.Whoami{TenantID: t.TenantID, TokenID: t.ID, TokenName: t.Name, Admin: t.Admin}
	if tn, err := h.cfg.Store.GetTenant(r.Context(), t.TenantID); err == nil {
		out.TenantName = tn.Name
	} else if !errors.Is(err, registry.ErrNotFound) {
		h.fail(w, r, err)
		return
	}
	h.reply(w, r, http.StatusOK, out)
}

func tenantView(t registry.Tenant) apitype.Tenant {
	return apitype.Tenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt}
}

func (h *handler) createTenant(w http.ResponseWriter, r *http.Request) {
	var req apitype.CreateTenantRequest
	if err := h.decode(w, r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.ID == "" {
		req.ID = registry.NewID("tn")
	} else if !isLabel(req.ID, "_") {
		h.fail(w, r, invalid("id", "must be 1-63 characters of a-z, 0-9, '-' and '_' (got %q)", req.ID))
		return
	}
	if err := validText("name", req.Name, maxTenantName); err != nil {
		h.fail(w, r, err)
		return
	}
	t := registry.Tenant{ID: req.ID, Name: req.Name, CreatedAt: h.now()}
	if err := h.cfg.Store.CreateTenant(r.Context(), t); err != nil {
		h.fail(w, r, storeError(err, "tenant not found", fmt.Sprintf("tenant %q already exists", req.ID)))
		return
	}
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	h.reply(w, r, http.StatusCreated, tenantView(t))
}

func (h *handler) listTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := h.cfg.Store.ListTenants(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := apitype.TenantList{Tenants: make([]apitype.Tenant, 0, len(ts))}
	for _, t := range ts {
		out.Tenants = append(out.Tenants, tenantView(t))
	}
	h.reply(w, r, http.StatusOK, out)
}

func (h *handler) getTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := h.cfg.Store.GetTenant(r.Context(), id)
	if err != nil {
		h.fail(w, r, storeError(err, "tenant "+id+" not found", "conflict"))
		return
	}
	h.reply(w, r, http.StatusOK, tenantView(t))
}

// createToken issues an API token for a tenant and returns it once.
func (h *handler) createToken(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("id")
	var req apitype.CreateTokenRequest
	if err := h.decode(w, r, &req, true); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Name == "" {
		req.Name = "api"
	}
	if err := validText("name", req.Name, maxTokenName); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.cfg.Store.GetTenant(r.Context(), tenant); err != nil {
		h.fail(w, r, storeError(err, "tenant "+tenant+" not found", "conflict"))
		return
	}
	secret := registry.NewSecret()
	t := registry.APIToken{ID: registry.NewID("tk"), TenantID: tenant, Name: req.Name,
		Hash: registry.HashSecret(secret), Admin: req.Admin, CreatedAt: h.now()}
	if err := h.cfg.Store.CreateToken(r.Context(), t); err != nil {
		h.fail(w, r, storeError(err, "tenant "+tenant+" not found", "token id collision; retry"))
		return
	}
	h.reply(w, r, http.StatusCreated, apitype.Token{ID: t.ID, TenantID: t.TenantID, Name: t.Name,
		Admin: t.Admin, CreatedAt: t.CreatedAt, Token: secret})
}

// deleteToken revokes an API token at once.
func (h *handler) deleteToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.cfg.Store.DeleteToken(r.Context(), id); err != nil {
		h.fail(w, r, storeError(err, "token "+id+" not found", "conflict"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
