package stream

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SigV4 verification is written here rather than done with the SDK's v4 signer: the signer decides by
// itself which headers to sign, while a verifier must rebuild the canonical request from exactly the
// SignedHeaders the client chose. The rules follow the published Signature Version 4 specification.

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateLayout  = "20060102T150405Z"
	msgBadSig      = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// sigV4Request is the parsed authentication material of a request.
type sigV4Request struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
	amzDate                          string
	presigned                        bool
}

func sigErr(typ, format string, args ...any) *APIError {
	status := http.StatusBadRequest
	if typ == ErrAccessDenied {
		status = http.StatusForbidden
	}
	return apiErr(typ, status, format, args...)
}

// authenticate verifies the SigV4 signature of r (whose body is body) when credentials are configured.
// Without credentials every request is accepted, signed or not, whatever its credential scope.
func (s *Server) authenticate(r *http.Request, body []byte) *APIError {
	if len(s.creds) == 0 {
		return nil
	}
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	presigned := q.Get("X-Amz-Algorithm") != ""
	if auth != "" && presigned {
		return sigErr(ErrInvalidSignature, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")
	}
	if auth == "" && !presigned {
		return sigErr(ErrMissingAuthToken, "Missing Authentication Token")
	}
	var sr sigV4Request
	if presigned {
		var missing string
		for _, p := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"} {
			if q.Get(p) == "" {
				missing += "AWS query-string parameters must include '" + p + "'. "
			}
		}
		if missing != "" {
			return sigErr(ErrIncompleteSignature, "%sRe-examine the query-string parameters.", missing)
		}
		if q.Get("X-Amz-Algorithm") != sigV4Algorithm {
			return sigErr(ErrIncompleteSignature, "Unsupported AWS 'algorithm': '%s'", q.Get("X-Amz-Algorithm"))
		}
		sr.presigned = true
		sr.signature = q.Get("X-Amz-Signature")
		sr.signedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
		sr.amzDate = q.Get("X-Amz-Date")
		if aerr := sr.parseCredential(q.Get("X-Amz-Credential")); aerr != nil {
			return aerr
		}
	} else {
		alg, rest, _ := strings.Cut(auth, " ")
		if alg != sigV4Algorithm {
			return sigErr(ErrIncompleteSignature, "Unsupported AWS 'algorithm': '%s'", alg)
		}
		params := map[string]string{}
		for _, part := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' }) {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			params[k] = v
		}
		var msg string
		for _, p := range []string{"Credential", "Signature", "SignedHeaders"} {
			if params[p] == "" {
				msg += "Authorization header requires '" + p + "' parameter. "
			}
		}
		sr.amzDate = r.Header.Get("X-Amz-Date")
		if sr.amzDate == "" {
			if d := r.Header.Get("Date"); d != "" {
				if t, err := http.ParseTime(d); err == nil {
					sr.amzDate = t.UTC().Format(amzDateLayout)
				}
			}
		}
		if sr.amzDate == "" {
			msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
		}
		if msg != "" {
			return sigErr(ErrIncompleteSignature, "%sAuthorization=%s", msg, auth)
		}
		sr.signature = params["Signature"]
		sr.signedHeaders = strings.Split(params["SignedHeaders"], ";")
		if aerr := sr.parseCredential(params["Credential"]); aerr != nil {
			return aerr
		}
	}
	secret, ok := s.creds[sr.accessKey]
	if !ok {
		return sigErr(ErrUnrecognizedClient, "The security token included in the request is invalid.")
	}
	t, err := time.Parse(amzDateLayout, sr.amzDate)
	if err != nil {
		return sigErr(ErrIncompleteSignature, "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", sr.amzDate)
	}
	now := s.e.now().UTC()
	skew := s.e.cfg.MaxClockSkew
	if sr.presigned {
		exp, _ := strconv.Atoi(q.Get("X-Amz-Expires"))
		if exp > 0 && now.After(t.Add(time.Duration(exp)*time.Second)) {
			return sigErr(ErrAccessDenied, "Request has expired")
		}
	} else if t.Before(now.Add(-skew)) {
		return sigErr(ErrInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %d min.)",
			sr.amzDate, now.Add(-skew).Format(amzDateLayout), now.Format(amzDateLayout), int(skew.Minutes()))
	} else if t.After(now.Add(skew)) {
		return sigErr(ErrInvalidSignature, "Signature not yet current: %s is still later than %s (%s + %d min.)",
			sr.amzDate, now.Add(skew).Format(amzDateLayout), now.Format(amzDateLayout), int(skew.Minutes()))
	}
	if sr.date != sr.amzDate[:8] {
		return sigErr(ErrInvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			sr.date, sr.amzDate[:8], sr.amzDate)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		if sr.presigned {
			payload = "UNSIGNED-PAYLOAD"
		} else {
			sum := sha256.Sum256(body)
			payload = hex.EncodeToString(sum[:])
		}
	}
	key := signingKey(secret, sr.date, sr.region, sr.service)
	scope := sr.date + "/" + sr.region + "/" + sr.service + "/aws4_request"
	for _, host := range hostCandidates(r) {
		for _, path := range pathCandidates(r) {
			creq := canonicalRequest(r, path, host, sr, payload)
			sum := sha256.Sum256([]byte(creq))
			sts := sigV4Algorithm + "\n" + sr.amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
			sig := hex.EncodeToString(hmacSHA256(key, sts))
			if hmac.Equal([]byte(sig), []byte(sr.signature)) {
				return nil
			}
		}
	}
	return sigErr(ErrInvalidSignature, msgBadSig)
}

// parseCredential splits "AKID/20240102/us-east-1/kinesis/aws4_request".
func (sr *sigV4Request) parseCredential(c string) *APIError {
	parts := strings.Split(c, "/")
	if len(parts) != 5 {
		return sigErr(ErrIncompleteSignature, "Credential should be scoped to a valid region, not '%s'. ", c)
	}
	if parts[4] != "aws4_request" {
		return sigErr(ErrIncompleteSignature, "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", parts[4])
	}
	sr.accessKey, sr.date, sr.region, sr.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// hostCandidates are the hosts the client may have signed: the Host it reached, and the original host
// a relay reports in X-Forwarded-Host.
func hostCandidates(r *http.Request) []string {
	out := []string{r.Host}
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		fh = strings.TrimSpace(strings.Split(fh, ",")[0])
		if fh != r.Host {
			out = append(out, fh)
		}
	}
	return out
}

// pathCandidates are the paths the client may have signed. Behind the portal relay the client signed
// the original path, X-Forwarded-Prefix followed by the path the relay forwarded.
func pathCandidates(r *http.Request) []string {
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	prefix := strings.TrimSpace(r.Header.Get("X-Forwarded-Prefix"))
	if prefix == "" {
		return []string{p}
	}
	orig := strings.TrimSuffix(prefix, "/") + p
	if !strings.HasPrefix(orig, "/") {
		orig = "/" + orig
	}
	out := []string{orig}
	if strings.HasSuffix(orig, "/") && len(orig) > 1 {
		out = append(out, strings.TrimSuffix(orig, "/"))
	} else {
		out = append(out, orig+"/")
	}
	return append(out, p)
}

func canonicalRequest(r *http.Request, path, host string, sr sigV4Request, payload string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(escapeURIPath(path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query(), sr.presigned))
	b.WriteByte('\n')
	for _, h := range sr.signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h, host))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(sr.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

func headerValue(r *http.Request, name, host string) string {
	switch name {
	case "host":
		return host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	vals := r.Header.Values(name)
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

func canonicalQuery(q url.Values, presigned bool) string {
	var pairs []string
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// escapeURIPath encodes every byte of p but unreserved characters and '/', as the SDKs do for every
// service but S3 (which, applied to an already escaped path, double-encodes it).
func escapeURIPath(p string) string { return uriEncode(p, false) }

func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}
