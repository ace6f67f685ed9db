// Package gateway is Ringback's HTTP edge. It owns accounts and their API
// keys (PostgreSQL schema "gateway"), authenticates every request (a Bearer
// API key, or the installation's operator token), enforces each account's IP
// allowlist, and serves:
//
//   - the REST API under /v1 through grpc-gateway: CallService and
//     EndpointService are forwarded to origination over gRPC with the
//     caller's account in the metadata key ringback-account-id (set here,
//     never taken from the client); AccountService is served in-process;
//   - the OpenAPI document at /v1/openapi.json and /healthz (no auth);
//   - the carrier-compatible clickToDial endpoint at the carrier's own paths
//     (/clickToDial.php and /Welcome/ClickToDialExtenal), so a CRM written
//     for that carrier only changes the host;
//   - the public click-to-call banner, authenticated by a campaign's public
//     key instead of an API key: POST /v1/campaigns/{id}/click2call (CORS
//     per campaign, abuse limits in Redis, an adaptive proof-of-work
//     challenge, duplicate joins), the visitor's call status as
//     Server-Sent Events (/v1/calls/{id}/events?token=, fed by core NATS)
//     and as JSON (/v1/calls/{id}?token=), /widget.js and /demo/banner
//     (banner*.go, web/).
//
// Every error a client can cause is JSON with a stable machine-readable code:
//
//	{"error":{"code":"IP_NOT_ALLOWED","message":"...","http_status":403}}
package gateway
