package stream

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
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
	if n < minLen {
		v.add(quote(s), field, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	}
	if maxLen > 0 && n > maxLen {
		v.add(quote(s), field, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
	if re != nil && n > 0 && !re.MatchString(s) {
		v.add(quote(s), field, "Member must satisfy regular expression pattern: "+reText)
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
	shardIDPatternRe    = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	hashKeyPatternRe    = regexp.MustCompile(`^(0|([1-9]\d{0,38}))$`)
	seqNumPatternRe     = regexp.MustCompile(`^(0|([1-9]\d{0,128}))$`)
	streamARNPatternRe  = regexp.MustCompile(`^arn:aws.*:kinesis:.*:\d{12}:stream/\S+$`)
	consumerARNPatterRe = regexp.MustCompile(consumerARNPattern)
	keyIDRe             = regexp.MustCompile(`.+`)
)

const (
	shardIDPattern = `[a-zA-Z0-9_.-]+`
	hashKeyPattern = `0|([1-9]\d{0,38})`
	seqNumPattern  = `0|([1-9]\d{0,128})`
)

// ref checks the stream naming members common to most operations.
func (v *validationErrors) ref(r streamRef) {
	v.str("streamName", r.StreamName, false, 1, 128, streamNameRe, streamNamePattern)
	v.str("streamARN", r.StreamARN, false, 1, 2048, streamARNPatternRe, streamARNPattern)
}

// tagMap checks a map of tags.
func (v *validationErrors) tagMap(field string, tags map[string]string, minN, maxN int) {
	if len(tags) < minN {
		v.add(quote(fmt.Sprint(tags)), field, fmt.Sprintf("Member must have length greater than or equal to %d", minN))
	}
	if len(tags) > maxN {
		v.add(quote(fmt.Sprint(tags)), field, fmt.Sprintf("Member must have length less than or equal to %d", maxN))
	}
	for k, val := range tags {
		if n := len([]rune(k)); n < 1 || n > 128 {
			v.add(quote(fmt.Sprint(tags)), field,
				"Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]")
		}
		if len([]rune(val)) > 256 {
			v.add(quote(fmt.Sprint(tags)), field,
				"Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]")
		}
	}
}
