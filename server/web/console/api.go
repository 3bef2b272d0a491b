package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"mailsetup/probe"
	"mailsetup/server/observe"
	"mailsetup/server/web/check"
	"mailsetup/server/web/request"
)

// The support API answers JSON to tools holding a staff API token
// (Authorization: Bearer <token>); every call is in the audit log.

// apiError is every API error's body.
type apiError struct {
	Error string `json:"error"`
}

func apiFail(c echo.Context, status int, format string, args ...any) error {
	return c.JSON(status, apiError{Error: fmt.Sprintf(format, args...)})
}

// requireToken checks the bearer token; only its SHA-256 is configured.
func (a *Console) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		if !request.SecretsAllowed(c) {
			return apiFail(c, http.StatusForbidden, "the API takes tokens over HTTPS only (or from this machine): this connection is not encrypted, so the token was not checked; use the https URL and create a new token if this one was sent elsewhere")
		}
		h := c.Request().Header.Get("Authorization")
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="mailsetup"`)
			return apiFail(c, http.StatusUnauthorized, "missing API token: send Authorization: Bearer <token> (create one with `mailsetup staff token NAME`)")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		name, ok := a.staff.creds.Load().tokens[hex.EncodeToString(sum[:])]
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="mailsetup", error="invalid_token"`)
			return apiFail(c, http.StatusUnauthorized, "unknown API token")
		}
		c.Set("token", name)
		return next(c)
	}
}

// observationsReply is GET /api/v1/accounts/{address}/observations.
type observationsReply struct {
	Address string `json:"address"`
	// Observed is false when the server saw nothing of the account.
	Observed     bool            `json:"observed"`
	Observations observe.Account `json:"observations"`
}

func (a *Console) apiObservations(c echo.Context) error {
	raw := request.PathAddress(c)
	_, addr, code, msg := request.Lookup(a.policies, "address", raw)
	if code != 0 {
		return apiFail(c, code, "%s", msg)
	}
	a.auditAdd(c, "token:"+c.Get("token").(string), "api-observations", addr.String(), "")
	rep := observationsReply{Address: addr.String()}
	if f := a.staff.opts.Observations; f != nil {
		rep.Observations, rep.Observed = f(addr.String())
	}
	if rep.Observations.Address == "" {
		rep.Observations.Address = addr.String()
	}
	return c.JSON(http.StatusOK, rep)
}

// apiProbeRequest is POST /api/v1/probe's body.
type apiProbeRequest struct {
	Address string `json:"address"`
	// Password, optional, is used for this check only.
	Password string                `json:"password,omitempty"`
	Client   *probe.ClientSettings `json:"client,omitempty"`
}

const maxAPIBody = 64 << 10

func (a *Console) apiProbe(c echo.Context) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apiFail(c, http.StatusUnsupportedMediaType, "send the request as JSON (Content-Type: application/json), not %q", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAPIBody+1))
	dec.DisallowUnknownFields()
	var req apiProbeRequest
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return apiFail(c, http.StatusBadRequest, "the body is empty or cut short: want {\"address\": ..., \"client\": {...}}")
		}
		return apiFail(c, http.StatusBadRequest, "the body is not a probe request: %v", err)
	}
	if dec.More() {
		return apiFail(c, http.StatusBadRequest, "the body has data after the JSON object (or is larger than %d bytes)", maxAPIBody)
	}
	_, addr, code, msg := request.Lookup(a.policies, "address", req.Address)
	if code != 0 {
		return apiFail(c, code, "address: %s", msg)
	}
	if req.Client != nil {
		if err := check.ValidateClient(req.Client); err != nil {
			return apiFail(c, http.StatusBadRequest, "client: %v", err)
		}
	}
	rep, err := a.runProbe(c, "token:"+c.Get("token").(string), "api-probe",
		check.Request{Address: addr.String(), Password: req.Password, Client: req.Client, Source: "api"})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// troublesReply is GET /api/v1/troubles.
type troublesReply struct {
	Hours    int               `json:"hours"`
	Accounts []observe.Trouble `json:"accounts"`
	// Redownloads is the alarm after a cutover.
	Redownloads redownloadsReply `json:"pop3_redownloads"`
}

// redownloadsReply counts per domain the accounts whose POP3 clients
// downloaded messages again within the last hours (at most 24).
type redownloadsReply struct {
	Hours   int                         `json:"hours"`
	Domains []observe.DomainRedownloads `json:"domains"`
}

// apiTroubles lists the accounts whose clients had trouble lately:
// ?hours=1..720 (default 24), ?limit=1..500 (default 50); and per
// domain the POP3 re-downloads of the last hours (at most 24).
func (a *Console) apiTroubles(c echo.Context) error {
	hours, err := queryInt(c, "hours", 24, 1, 720)
	if err != nil {
		return apiFail(c, http.StatusBadRequest, "%v", err)
	}
	limit, err := queryInt(c, "limit", 50, 1, 500)
	if err != nil {
		return apiFail(c, http.StatusBadRequest, "%v", err)
	}
	a.auditAdd(c, "token:"+c.Get("token").(string), "api-troubles", "", fmt.Sprintf("hours=%d limit=%d", hours, limit))
	rep := troublesReply{Hours: hours, Accounts: []observe.Trouble{}}
	if f := a.staff.opts.Recent; f != nil {
		rep.Accounts = f(limit, time.Duration(hours)*time.Hour)
	}
	rep.Redownloads = redownloadsReply{Hours: min(hours, int(observe.MaxRedownloadWindow/time.Hour)), Domains: []observe.DomainRedownloads{}}
	if f := a.staff.opts.Redownloads; f != nil {
		rep.Redownloads.Domains = f(time.Duration(rep.Redownloads.Hours) * time.Hour)
	}
	return c.JSON(http.StatusOK, rep)
}

// queryInt reads the query parameter name as a number from lo to hi,
// def when it is absent; the error names the parameter and the range.
func queryInt(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want a number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}
