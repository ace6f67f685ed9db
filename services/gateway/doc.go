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
//     for that carrier only changes the host.
//
// Every error a client can cause is JSON with a stable machine-readable code:
//
//	{"error":{"code":"IP_NOT_ALLOWED","message":"...","http_status":403}}
package gateway
