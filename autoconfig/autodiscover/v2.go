package autodiscover

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// V2Protocol is the only Autodiscover v2 protocol we answer: the one that
// asks where the POX (v1) endpoint is.
const V2Protocol = "AutodiscoverV1"

// V2ContentType is the Content-Type of V2 bodies.
const V2ContentType = "application/json; charset=utf-8"

type v2Success struct {
	Protocol string `json:"Protocol"`
	URL      string `json:"Url"`
}

type v2Error struct {
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// V2 answers an Autodiscover v2 query, GET
// /autodiscover/autodiscover.json?Email=...&Protocol=... or
// /autodiscover/autodiscover.json/v1.0/<address>?Protocol=...; the caller
// extracts protocol from either form. Autodiscover v2 can only point at a
// service URL, so for protocol "AutodiscoverV1" (compared
// case-insensitively) it returns 200 and
//
//	{"Protocol":"AutodiscoverV1","Url":"<poxURL>"}
//
// and for anything else (ActiveSync, Ews, Rest, an empty value) 400 and
//
//	{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value '<x>' is invalid. Supported values are 'AutodiscoverV1'"}
//
// Serve the body with V2ContentType.
func V2(protocol, poxURL string) (status int, body []byte) {
	var v any = v2Success{Protocol: V2Protocol, URL: poxURL}
	status = http.StatusOK
	if !strings.EqualFold(protocol, V2Protocol) {
		status = http.StatusBadRequest
		v = v2Error{
			ErrorCode:    "InvalidProtocol",
			ErrorMessage: "The given protocol value '" + protocol + "' is invalid. Supported values are '" + V2Protocol + "'",
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep '&' in URLs readable; the body is JSON, never inlined in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Unreachable: both types are structs of strings.
		return http.StatusInternalServerError, []byte(`{"ErrorCode":"InternalServerError"}`)
	}
	return status, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
