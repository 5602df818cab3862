// Package ejbcasim is an in-process simulator of EJBCA's REST API: the
// one-call pkcs10enroll, the Enterprise approval flow (/v1/endentity, the
// approval API, certificaterequest, finalize), revocation, search, the CA
// list and chain download, mTLS and OAuth2 bearer authentication, and an
// OAuth2 token endpoint. It serves real TLS on a loopback address and issues
// real X.509 certificates, so the issuer's EJBCA client, the controllers,
// the demo and the benchmarks run against it as they would against EJBCA.
//
// Tests steer it from Go: approve or reject requests, add end entities,
// revoke administrator certificates, expire tokens, switch the REST protocol
// off, take a CA or its crypto token off line, take the server down, add
// latency and inject faults (error statuses, Retry-After, resets, truncated
// bodies, a certificate for the wrong key), then assert on the per-endpoint
// call counters.
//
// # Several nodes (test-only)
//
// StartNode adds a listener over the same state, another node of one
// EJBCA (its nodes share a database). Only the shared state stands for
// EJBCA (EndEntityManagementSessionBean, ApprovalSessionBean and
// CertificateStoreSessionBean read one database). Node.SetDown, SetFrozen
// and SetRefuseCredentials, and Node.Calls, Dialed and Held, are test-only
// stand-ins for faults of a multi-node deployment (a node unreachable, a
// hung JVM, a node whose truststore or OAuth settings differ), not EJBCA
// behaviour. See Node for the deviations.
//
// # Versions: presets and switches
//
// What differs between EJBCA editions and versions is one switch each in
// Behaviour; a preset is a named set of switches (PresetNames), chosen with
// Config.Preset (default enterprise-9) or replaced with Config.Behaviour:
//
//   - community-9: Community 9.3.3. No approvals; no /v1/endentity and no
//     approval API (EndEntityRestResource and ApprovalRestResource are
//     Enterprise modules), so those paths answer RESTEasy's 404; OAuth;
//     start_time/end_time honoured.
//   - enterprise-8: an older Enterprise. Approvals; /v1/endentity answers a
//     pending addition with the error shape and no id; no approval API;
//     finalize present; no validity override.
//   - enterprise-9: a recent Enterprise. Approvals; approval API; the 202
//     info body with link and request_id; certificaterequest without
//     certificate_request_type fails with 500.
//
// # Behaviours and the EJBCA classes that show them
//
//   - Search (v1 and v2) accepts only the properties of
//     SearchCertificateCriteriaRestRequest.CriteriaProperty and the
//     operations, status names and ISO 8601 "...Z" dates its validators
//     allow (ValidSearchCertificateCriteriaRestRequest, ...RequestList,
//     ValidSearchCertificateMaxNumberOfResults, ValidationMessages.properties
//     for the texts); unknown CA or profile names are refused as
//     CertificateRestResource's reference check does. QUERY matches
//     username, subject DN, subject alternative name, account binding id and
//     the serial in decimal or hex (SearchCertificatesRestRequestV2's
//     converter); EQUAL is exact.
//   - v2 search pages as CertificateRestResourceV2.searchCertificates and
//     SearchCertificatesRestResponseV2.toRestResponse (9.x) do: with
//     pagination the page, page_size/current_page and, on every non-empty
//     page, total_certs = page_size*(current_page-1)+rows (so a full page's
//     total_certs ends on that page; an empty page has none); current_page
//     -1 answers the count only, as does a search without pagination. Rows
//     carry the serial in upper-case hex and the subject key id in hex
//     (CertificateRestResponseV2). Every preset pages the 9.x way: an older
//     Enterprise converter (PrimeKey's, before 8.x's Community module) set
//     no total_certs on paged answers at all, which a client that walks
//     while pages are full reads the same way.
//   - /v1/endentity: EndEntityRestResource.add (bean validation of
//     ValidAddEndEntityRestRequest, then end entity profile, certificate
//     profile and CA in that order; USER_ALREADY_EXISTS as 409 with
//     ra.errorentityexist). A pending addition is 202: as a RestException in
//     the error shape (PendingWithoutID), or through ExceptionHandler's
//     WaitingForApprovalException mapping with the (malformed) finalize link
//     and request_id. A repeated addition while one waits is
//     ApprovalSessionBean.addApprovalRequest's approval.alreadyexists, 400,
//     naming the approvalID (a hash of the request, not the request id).
//   - GET /v1/approval/{id}/status: ApprovalRestResource.
//     getApprovalRequestStatus with ApprovalRequestStatus.
//     fromIntWithCombinedStates (EXECUTED is APPROVED, EXECUTION_FAILED is
//     REJECTED); id <= 0 is 400 "Invalid request ID: N. Request ID must be
//     a positive integer." (ApprovalRestResourceSystemTest), an unknown id 404, a non-numeric id
//     RESTEasy's 404 (an int path parameter).
//   - POST /v1/approval/{id}/process: ApprovalRestResource.
//     processApprovalRequest with ProcessApprovalRestRequest
//     {"approve","comment"}; unknown id 404, no longer pending 409, a missing
//     approve the catch-all 500; the answer is ProcessApprovalRestResponse
//     (request_id as a string, request_type, dates, end_entity_name, combined
//     status, steps as ApprovalStepRestResponse).
//   - finalize: CertificateRestResource.finalizeEnrollment. Unknown id 400,
//     response_format checked against TokenDownloadType's names (400),
//     waiting 202, rejected/expired/execution failed 400; on an approved
//     request it enrols and leaves the end entity GENERATED, later calls
//     answer "has already been finalized"; a wrong enrolment code reaches
//     ExceptionHandler as AuthLoginException (403). No body is the
//     NullPointerException path: 500 "General failure.".
//   - certificaterequest: CertificateRestResource.certificateRequest and
//     CertificateRequestRestRequest (some 9.x builds switch on a null
//     certificate_request_type: 500; later ones read null as PKCS10 and
//     refuse unknown types with 400). Refusals from
//     SignSessionBean.createCertificateWS (an unknown end entity is
//     NotFoundException "Wrong username or password", a non-USERGENERATED
//     token) and EndEntityAuthenticationSessionBean.authenticateUser (status
//     before password: authentication.wrongstatus, authentication.invalidpwd)
//     are EjbcaExceptions the resource answers with 400. An offline CA or
//     crypto token reaches ExceptionHandler: 503. certificate_authority_name
//     is only read, after issuing, for include_chain (getLastCaChain, i.e.
//     CaSessionBean.getCaChain): an unknown name is CADoesntExistsException
//     "CA with name X doesn't exist." mapped to 404, with the certificate
//     already issued.
//   - pkcs10enroll: EjbcaRestHelperSessionBean.convertToEndEntityInformation
//     (CA, then certificate profile by name: a missing name prints as
//     "null"; then the end entity profile, "End Entity Profile of name ...
//     was not found"). An offline CA or crypto token is a CesecoreException
//     that RaMasterApiSessionBean.createCertificateRest wraps in an
//     EjbcaException (whose message is then "<exception class>: <message>")
//     and the resource answers with 400.
//   - Revocation: CertificateRestResource.revokeCertificate and
//     revocationStatus (serial format, "CA 'X' does not exist.", certificate
//     not found, "Date in the future" as 400, ra.bad.date.generic,
//     ra.norevokebackdate as 422); a revocation waiting for approval is the
//     info body without link (ra.approvalrevoke). The reason names are the
//     string values of org.cesecore.certificates.crl.RevocationReasons
//     (getFromCliValue), which revokeCertificate looks the query parameter
//     up in. EndEntityManagementSessionBean.revokeCert checks the
//     certificate's state before it asks for approval, so on an approval
//     profile too: a certificate already revoked (other than on hold, or
//     put on hold again) and NOT_REVOKED/REMOVE_FROM_CRL on a certificate not
//     on hold are AlreadyRevokedException, 409. The same revocation asked
//     again while the first waits is ApprovalSessionBean.addApprovalRequest's
//     approval.alreadyexists, 400 (RevocationApprovalRequest's approvalID
//     hashes the certificate and the reason, so another reason is another
//     request). A successful call says "Successfully revoked", a lifted hold
//     included. The body is RevokeStatusRestResponse, whose null fields
//     Jackson leaves out (JsonInclude NON_NULL): revocationstatus has no
//     message (its converter sets none), and revocation_date is absent while
//     the certificate is not revoked.
//   - Errors are ExceptionHandler's {"error_code","error_message"}; an
//     unexpected exception is 500 "General failure."; a path no resource
//     serves is RESTEasy's "Could not find resource for full path" 404. A
//     resource path matches with or without a trailing slash, as JAX-RS
//     matches it (CertificateRestResourceSystemTest.shouldRevokeCertificate
//     calls .../revoke/?reason=...).
//
// EJBCA's own REST tests are the oracle: conformance_test.go ports the
// expectations of its test classes (CertificateRestResourceSystemTest,
// SearchCertificatesRestResponseV2UnitTest, CaRestResourceSystemTest,
// ApprovalRestResourceSystemTest, ValidSearchCertificateMaxNumberOfResultsUnitTest)
// for what the issuer's client relies on; docs/compatibility.md counts them.
// Behaviours that no EJBCA REST test checks are listed there too ("Left
// out"), with the source class they follow and the simulator's own test.
//
// # Deviations from EJBCA that remain, and why
//
//   - finalize of an approved addition generates the key pair itself and
//     returns the certificate (DER, or PEM), never a keystore: EJBCA would
//     issue a USERGENERATED end entity from a CSR stored with the request,
//     which /v1/endentity cannot carry, or build a PKCS#12/JKS/BCFKS
//     keystore, which the issuer never asks for. Keystore formats are refused
//     with a message of the simulator's own ("ejbcasim: ...").
//   - An administrator may approve a request it made: EJBCA refuses that
//     (approval.error.cannotapproveownrequest), but tests have one
//     administrator certificate.
//   - Approval profiles have one step of one approval; requests expire after
//     8 hours on the simulator's clock.
//   - An end entity being enrolled is held INPROCESS and a concurrent
//     enrolment for it is refused with the wrong-status 400; EJBCA accepts
//     INPROCESS and could issue twice. One certificate per enrolment code
//     keeps the counters meaningful.
//   - Search: LIKE is a case-insensitive substring match (EJBCA's database
//     collation decides); date criteria compare strictly; REVOCATION_DATE
//     matches revoked certificates only; v2 "sort" is ignored (results are
//     oldest first); v2 accepts only the v1 properties (newer versions add
//     UPDATE_TIME); results are not limited by the administrator's access
//     rules; when several criteria are invalid only the first is reported.
//   - The inner texts of the offline messages are EJBCA's resource strings
//     as read (a CA: "Signing CA '<DN>' is not active.", a crypto token:
//     error.catokenoffline); which string a given version uses is
//     unconfirmed. The exception class names in pkcs10enroll's message follow
//     from the EjbcaException(cause) wrapping.
//   - Message texts that changed between versions use one version's:
//     enterprise-8's pending addition says "Add End Entity Action have been
//     added for approval by authorized adminstrators.", the info body the 8.x
//     resource text ra.approvalad; a wrong enrolment code is
//     authentication.invalidpwd (older versions said "Wrong username or
//     password" here too).
//   - A missing approve in process quotes Java 17's helpful
//     NullPointerException text, which depends on the JVM.
//   - certificaterequest parses only PKCS#10 whatever the type says.
//   - OAuth off (Behaviour.OAuth false) treats a bearer token as no
//     credential; what a version without OAuth answers was not confirmed.
//   - Default validity: 90 days (SERVER profile: 365 days), starting 10
//     minutes in the past; end_time/start_time override it and are capped at
//     the issuing CA's expiry. Keys are ECDSA P-256 for every CA, simulator
//     credential and finalize enrolment.
//   - The end entity's subject DN always wins over the CSR subject; its
//     subject alternative name wins when it has one, else the CSR's is used.
//   - The approvalID in "Approval request with approvalID N already exists."
//     (revocations and end entity additions) is the simulator's hash of the
//     same inputs, not EJBCA's value; clients must not compare it.
//
// Messages in the simulator's own wording, where no EJBCA source gave the
// text: NOT_REVOKED/REMOVE_FROM_CRL on a certificate not on hold (409, "...
// is not on hold: only a certificate revoked with reason CERTIFICATE_HOLD
// can be unrevoked."; ra.errorunrevokenotonhold, whose text was not found;
// it replaced an earlier 400 of the simulator's), untrusted/expired/revoked client certificates ("Client certificate
// ... is not trusted." / "has expired." / "has been revoked."), an invalid
// CSR or CSR signature ("Invalid certificate request"), pkcs10enroll without
// username or with an unknown response_format, invalid start_time/end_time,
// /v1/endentity without password ("Password cannot be empty or null.") or
// with an unparseable subject_alt_name, the uniqueness conflicts (409), the CA chain download's unknown CA, a
// non-numeric approval id (RESTEasy's parameter message), keystore formats in
// finalize, the HTML page of a disabled REST protocol, and a node refusing
// credentials (Node.SetRefuseCredentials: "Authentication failed: the client
// certificate or OAuth bearer token is not trusted by this node.").
//
// The CA list's issuer_dn is each CA's direct issuer, as CaInfoRestResponse
// gives it on the versions that report "external" (older versions gave the
// root's DN; deviation kept: no switch for that, the client uses neither).
// Test-only additions that stand for no EJBCA behaviour: Fault.Processing
// (EJBCA finishing a call whose client gave up, as a servlet does),
// Arrivals (call times), RevokeCalls (revoke calls per serial, for
// exactly-once assertions), RevokeAsAdministrator (a revocation made in
// EJBCA's admin web, outside the REST API, so not counted; it applies
// RevocationReasons as the REST path does), ParseEndEntityNames (the simulator's own DN and
// SAN parsing, for the client's escaping fuzz test), and StartNode's
// Node.SetDown/SetFrozen/SetRefuseCredentials (per-node faults of a
// deployment; thawing a frozen node resets its held calls unhandled) and
// Node.Calls/Dialed/Held (per-node counters).
//
// GET /v2/certificate/profile/{name} follows
// CertificateRestResourceV2.getCertificateProfileInfo: the profile's id, key
// algorithms and CAs (certificate_profile_id, available_key_algs,
// available_bit_lenghts, available_ecdsa_curves, available_cas), or 400
// "Invalid search criteria, unknown certificate profile." (switch
// CertificateProfileAPI; absent on enterprise-8, where its version is not
// pinned down). available_cas is RaCertificateProfileResponseV2's list: a
// profile that allows any CA lists "ANY_CA" alone (every version of that
// class in EJBCA's source spells it so), else the names of the CAs it
// allows (SetProfileCAs; by default every CA). Enrolment does not enforce a
// profile's CA list (deviation: EJBCA refuses to issue from a CA the
// profile does not allow). The simulator offers the same
// key algorithms (RSA, ECDSA) and curves (prime256v1, secp384r1, secp521r1) for every
// profile, and RSA bit lengths from a fixed list {1024, 2048, 3072, 4096}
// cut at the profile's minimum, where EJBCA reports what each profile
// allows.
//
// Not EJBCA's behaviour, but of what stands around it:
//   - The OAuth2 token endpoint stands for the identity provider (RFC 6749
//     client credentials): an unknown audience/resource is invalid_target
//     (RFC 8707), an unknown scope invalid_scope; when both audience and
//     resource are sent, only audience is checked.
//   - Config.RefuseUntrustedClientCertsInHandshake stands for an
//     application server's HTTPS listener with a truststore: an untrusted,
//     expired or revoked client certificate is refused with a TLS alert
//     before any HTTP, where EJBCA's own check (without it) answers 403.
//   - IssuedCert.RevocationDate is a test accessor, like RevokeCalls.
package ejbcasim
