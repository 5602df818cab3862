// Package ejbcasim is a faithful, in-process simulator of EJBCA's REST API
// (as described in the project's ejbca-rest-api.md notes): the one-call
// pkcs10enroll, the Enterprise approval flow, revocation, search, the CA list
// and chain download, mTLS and OAuth2 bearer authentication, and an OAuth2
// token endpoint. It serves real TLS on a loopback address and issues real
// X.509 certificates, so the issuer's EJBCA client, the controllers, the demo
// and the benchmarks run against it exactly as they would against EJBCA.
//
// Tests steer it from Go: approve or reject requests, revoke administrator
// certificates, expire tokens, switch the REST protocol off, take the server
// down, add latency and inject faults (error statuses, Retry-After, resets,
// truncated bodies, a certificate for the wrong key), then assert on the
// per-endpoint call counters.
//
// Choices where EJBCA's behaviour is not pinned down:
//   - Default validity: 90 days (SERVER profile: 365 days), starting 10
//     minutes in the past; end_time/start_time override it and are capped at
//     the issuing CA's expiry.
//   - Finalize of an approved (executed) request answers 200 with the request
//     and end entity status instead of generating a keystore.
//   - An approved "add end entity" request reports status EXECUTED, as EJBCA
//     does once it has carried out the approved action.
//   - The end entity's subject DN always wins over the CSR subject; its
//     subject alternative name wins when it has one, else the CSR's is used.
//   - Keys are ECDSA P-256 for every CA and simulator credential.
//   - search v2 reports serialNumber in decimal (unconfirmed).
//
// Messages in the simulator's own wording, where no EJBCA source gave the
// exact text: untrusted/expired/revoked client certificates ("Client
// certificate ... is not trusted." / "has expired." / "has been revoked."),
// an invalid CSR signature, weak RSA keys ("Illegal key length, not authorized
// by profile: N"), an offline CA (503), /v1/endentity rejections and the 409
// for an existing end entity, unknown CA on revoke (404), back-dated
// revocation (422), out-of-range search limits, unknown REST paths (404) and
// the HTML page of a disabled REST protocol. The messages ejbca-rest-api.md
// gives are reproduced exactly.
package ejbcasim
