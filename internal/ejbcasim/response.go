package ejbcasim

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
)

// maxBodyBytes bounds request bodies; a CSR with many SANs stays far below.
const maxBodyBytes = 1 << 20

// apiError is an EJBCA error answer: the HTTP status and error_message.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, message string) *apiError {
	return &apiError{status: status, message: message}
}

// errorBody is EJBCA's JSON error body; error_code repeats the HTTP status.
type errorBody struct {
	ErrorCode    int    `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// writeJSON answers v as JSON without HTML escaping, as Jackson writes it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, errorBody{ErrorCode: status, ErrorMessage: message})
}

func writeAPIError(w http.ResponseWriter, err *apiError) {
	writeError(w, err.status, err.message)
}

// malformedJSONMessage is the plain-text body EJBCA 9 answers for a body it
// cannot bind.
const malformedJSONMessage = "Malformed JSON request, check if format of the values of every parameter is correct and request structure is proper."

func writePlainText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// disabledPage is what the application server answers when EJBCA's REST
// protocol is switched off: HTML, not EJBCA's JSON.
const disabledPage = `<!DOCTYPE html>
<html><head><title>Error</title></head>
<body><h1>Forbidden</h1><p>This service has been disabled.</p></body></html>
`

func writeDisabledPage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(disabledPage))
}

// decodeJSON binds the request body into v. Like EJBCA 9 it answers a body it
// cannot bind with a plain-text 400, and a declared non-JSON media type with
// 415; unknown fields are ignored. It reports whether v was bound.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "*/*") {
			writePlainText(w, http.StatusUnsupportedMediaType, "RESTEASY003065: Cannot consume content type")
			return false
		}
	}
	body := http.MaxBytesReader(nil, r.Body, maxBodyBytes)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writePlainText(w, http.StatusRequestEntityTooLarge, "Request body too large")
			return false
		}
		writePlainText(w, http.StatusBadRequest, malformedJSONMessage)
		return false
	}
	return true
}

// bufferedResponse holds a handler's answer so the simulator can deliver it
// whole, cut short, or not at all.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) statusCode() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// flushTo delivers the whole answer.
func (b *bufferedResponse) flushTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(b.body.Len()))
	w.WriteHeader(b.statusCode())
	_, _ = w.Write(b.body.Bytes())
}
