// Package proto is the root of the Ringback API module: the protos under
// ringback/<domain>/v1, the HTTP mapping in ringback/gateway.yaml and the code
// generated from them under gen/ (Go messages, gRPC and grpc-gateway code in
// gen/go, the OpenAPI document in gen/openapi). Partners import this module
// alone; regenerate with scripts/generate.sh.
//
// The package itself holds only the tests that pin the API's wire contract
// (JSON names, HTTP routes).
package proto
