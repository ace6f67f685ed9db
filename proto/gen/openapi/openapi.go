// Package openapi holds the Ringback API's OpenAPI (Swagger 2.0) document,
// generated from the protos and gateway.yaml, so the gateway can serve it
// (at /v1/openapi.json) without reading files at run time.
package openapi

import _ "embed"

// JSON is the merged OpenAPI document of every Ringback HTTP route. Callers
// must not modify it.
//
//go:embed ringback.swagger.json
var JSON []byte
