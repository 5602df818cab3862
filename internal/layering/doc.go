// Package layering holds no code: its test keeps the seams of controllers/
// that the compiler alone does not. The signing core (controllers/signing)
// must not reach for controller wiring (controller-runtime's builder,
// handler or predicate packages) nor any other controllers package, and
// only controllers/issuers writes an issuer (its status above all: the
// issuer controllers are the one writer of an issuer's Ready condition), and
// only the signer reaches the exactly-once memory (signing.Attempts).
package layering
