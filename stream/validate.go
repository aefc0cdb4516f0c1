package stream

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// These helpers check the constraints of the service's API model and word the violations the way the
// service does (field names in lowerCamelCase, values quoted, null for missing members).

func quote(s string) string { return "'" + s + "'" }

func (v *validationErrors) str(field string, p *string, required bool, minLen, maxLen int, re *regexp.Regexp, reText string) {
	if p == nil {
		if required {
			v.add("null", field, "Member must not be null")
		}
		return
	}
	s := *p
	n := len([]rune(s))
	// The service checks the pattern first (an empty string fails it too), then the length bounds.
	if re != nil && !re.MatchString(s) {
		v.add(quote(s), field, "Member must satisfy regular expression pattern: "+reText)
	}
	if n < minLen {
		v.add(quote(s), field, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	}
	if maxLen > 0 && n > maxLen {
		v.add(quote(s), field, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
}

func (v *validationErrors) integer(field string, p *int, required bool, minV, maxV int) {
	if p == nil {
		if required {
			v.add("null", field, "Member must not be null")
		}
		return
	}
	if *p < minV {
		v.add(quote(strconv.Itoa(*p)), field, fmt.Sprintf("Member must have value greater than or equal to %d", minV))
	}
	if *p > maxV {
		v.add(quote(strconv.Itoa(*p)), field, fmt.Sprintf("Member must have value less than or equal to %d", maxV))
	}
}

func (v *validationErrors) enum(field string, p *string, required bool, values ...string) {
	if p == nil {
		if required {
			v.add("null", field, "Member must not be null")
		}
		return
	}
	for _, x := range values {
		if *p == x {
			return
		}
	}
	v.add(quote(*p), field, "Member must satisfy enum value set: ["+strings.Join(values, ", ")+"]")
}

func (v *validationErrors) notNull(field string, present bool) {
	if !present {
		v.add("null", field, "Member must not be null")
	}
}

func (v *validationErrors) blob(field string, b []byte, required bool, maxLen int) {
	if b == nil {
		if required {
			v.add("null", field, "Member must not be null")
		}
		return
	}
	if len(b) > maxLen {
		v.add(quote(fmt.Sprintf("java.nio.HeapByteBuffer[pos=0 lim=%d cap=%d]", len(b), len(b))), field,
			fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
}

var (
	shardIDPatternRe     = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	hashKeyPatternRe     = regexp.MustCompile(`^(0|([1-9]\d{0,38}))$`)
	seqNumPatternRe      = regexp.MustCompile(`^(0|([1-9]\d{0,128}))$`)
	streamARNPatternRe   = regexp.MustCompile(`^arn:aws.*:kinesis:.*:\d{12}:stream/\S+$`)
	consumerARNPatterRe  = regexp.MustCompile(consumerARNPattern)
	streamIDPatternRe    = regexp.MustCompile(`^[a-z0-9]{20}-[a-z0-9]{3}$`)
	resourceARNPatternRe = regexp.MustCompile(`^arn:aws.*:kinesis:.*:\d{12}:.*stream/\S+$`)
)

const (
	shardIDPattern = `[a-zA-Z0-9_.-]+`
	hashKeyPattern = `0|([1-9]\d{0,38})`
	seqNumPattern  = `0|([1-9]\d{0,128})`
	// streamIDPattern is the StreamId pattern of the API model.
	streamIDPattern = `[a-z0-9]{20}-[a-z0-9]{3}`
	// resourceARNPattern is the ResourceARN pattern of the tagging and resource policy operations.
	resourceARNPattern = `arn:aws.*:kinesis:.*:\d{12}:.*stream/\S+`
)

// ref checks the stream naming members common to most operations. The service lists their violations
// after those of the other members, so operations call it last.
func (v *validationErrors) ref(r streamRef) {
	v.str("streamName", r.StreamName, false, 1, 128, streamNameRe, streamNamePattern)
	v.str("streamARN", r.StreamARN, false, 1, 2048, streamARNPatternRe, streamARNPattern)
	v.str("streamId", r.StreamId, false, 1, 24, streamIDPatternRe, streamIDPattern)
}

// javaMap renders a map the way the service's messages do (java.util.Map#toString): {k1=v1, k2=v2}.
func javaMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// javaList renders a list the way the service's messages do (java.util.List#toString): [a, b].
func javaList(l []string) string { return "[" + strings.Join(l, ", ") + "]" }

// Tag limits of the API model: a TagMap holds 1 to 200 entries (the 50-tags-per-resource limit is
// checked against the stored tags, as an InvalidArgumentException), keys 1 to 128 characters, values up
// to 256; a TagKeyList holds 1 to 50 keys.
const (
	maxTagMapEntries = 200
	maxTagKeyList    = 50
)

// tagMap checks a map of tags (a TagMap member: 1 to 200 entries).
func (v *validationErrors) tagMap(field string, tags map[string]string) {
	val := quote(javaMap(tags))
	if len(tags) < 1 {
		v.add(val, field, "Member must have length greater than or equal to 1")
	}
	if len(tags) > maxTagMapEntries {
		v.add(val, field, fmt.Sprintf("Member must have length less than or equal to %d", maxTagMapEntries))
	}
	badKey, badValue := false, false
	for k, val := range tags {
		if n := len([]rune(k)); n < 1 || n > 128 {
			badKey = true
		}
		if len([]rune(val)) > 256 {
			badValue = true
		}
	}
	if badKey {
		v.add(val, field,
			"Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]")
	}
	if badValue {
		v.add(val, field,
			"Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]")
	}
}

// tagKeys checks a TagKeyList member: 1 to 50 keys of 1 to 128 characters.
func (v *validationErrors) tagKeys(field string, keys []string, present bool) {
	if !present {
		v.add("null", field, "Member must not be null")
		return
	}
	val := quote(javaList(keys))
	if len(keys) < 1 {
		v.add(val, field, "Member must have length greater than or equal to 1")
	}
	if len(keys) > maxTagKeyList {
		v.add(val, field, fmt.Sprintf("Member must have length less than or equal to %d", maxTagKeyList))
	}
	for _, k := range keys {
		if n := len([]rune(k)); n < 1 || n > 128 {
			v.add(val, field,
				"Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]")
			break
		}
	}
}

// tagCharsOK reports whether a tag key or value uses only the characters the service allows: Unicode
// letters, digits, white space and _ . / = + - % @ :.
func tagCharsOK(s string) bool {
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsSpace(r):
		case strings.ContainsRune("_./=+-%@:", r):
		default:
			return false
		}
	}
	return true
}

const msgTagChars = "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :."
