#include "weir/internal/json_string.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weir {
namespace internal {

// ---- writing ----------------------------------------------------------------

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) -> unsigned char {
    return static_cast<unsigned char>(s[k]);
  };
  const unsigned char lead = byte(i);
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

void AppendJsonString(std::string_view s, std::string* out,
                      JsonEscapeOptions options) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  // Bytes that stand for themselves: taken a run at a time.
  auto plain = [&options](unsigned char c) {
    if (c >= 0x80) return !options.replace_invalid_utf8;
    if (c == 0x7f) return !options.escape_del;
    return c >= 0x20 && c != '"' && c != '\\';
  };
  for (size_t i = 0; i < s.size();) {
    size_t end = i;
    while (end < s.size() && plain(static_cast<unsigned char>(s[end]))) ++end;
    if (end > i) {
      out->append(s.data() + i, end - i);
      i = end;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80 && options.replace_invalid_utf8) {
      const size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for a byte that is not UTF-8
        ++i;
      } else {
        out->append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || (c == 0x7f && options.escape_del)) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// ---- reading ----------------------------------------------------------------

namespace {

// Reads 4 hex digits at s[*pos], advancing past each digit as it is read.
JsonStringError ReadHex4(std::string_view s, size_t* pos, uint32_t* out) {
  if (*pos + 4 > s.size()) return JsonStringError::kShortUnicodeEscape;
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    const char h = s[(*pos)++];
    v <<= 4;
    if (h >= '0' && h <= '9') {
      v |= static_cast<uint32_t>(h - '0');
    } else if (h >= 'a' && h <= 'f') {
      v |= static_cast<uint32_t>(h - 'a' + 10);
    } else if (h >= 'A' && h <= 'F') {
      v |= static_cast<uint32_t>(h - 'A' + 10);
    } else {
      return JsonStringError::kBadUnicodeEscape;
    }
  }
  *out = v;
  return JsonStringError::kOk;
}

}  // namespace

JsonStringError ReadJsonString(std::string_view s, size_t* pos,
                               bool allow_control_characters,
                               std::string* out) {
  size_t& i = *pos;
  ++i;  // the opening quote
  const auto put = [out](char c) {
    if (out != nullptr) out->push_back(c);
  };
  while (true) {
    if (i >= s.size()) return JsonStringError::kUnterminated;
    const char c = s[i++];
    if (c == '"') return JsonStringError::kOk;
    if (!allow_control_characters && static_cast<unsigned char>(c) < 0x20) {
      return JsonStringError::kControlCharacter;
    }
    if (c != '\\') {
      put(c);
      continue;
    }
    if (i >= s.size()) return JsonStringError::kUnterminatedEscape;
    const char e = s[i++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        put(e);
        break;
      case 'b':
        put('\b');
        break;
      case 'f':
        put('\f');
        break;
      case 'n':
        put('\n');
        break;
      case 'r':
        put('\r');
        break;
      case 't':
        put('\t');
        break;
      case 'u': {
        uint32_t cp = 0;
        JsonStringError error = ReadHex4(s, pos, &cp);
        if (error != JsonStringError::kOk) return error;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return JsonStringError::kLoneLowSurrogate;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (i + 2 > s.size() || s[i] != '\\' || s[i + 1] != 'u') {
            return JsonStringError::kLoneHighSurrogate;
          }
          i += 2;
          uint32_t low = 0;
          error = ReadHex4(s, pos, &low);
          if (error != JsonStringError::kOk) return error;
          if (low < 0xDC00 || low > 0xDFFF) {
            return JsonStringError::kBadLowSurrogate;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) AppendUtf8(cp, out);
        break;
      }
      default:
        return JsonStringError::kBadEscape;
    }
  }
}

std::string_view JsonStringErrorMessage(JsonStringError error) {
  switch (error) {
    case JsonStringError::kOk:
      return "";
    case JsonStringError::kUnterminated:
      return "unterminated string";
    case JsonStringError::kControlCharacter:
      return "control character in string";
    case JsonStringError::kUnterminatedEscape:
      return "unterminated escape";
    case JsonStringError::kBadEscape:
      return "bad escape";
    case JsonStringError::kShortUnicodeEscape:
      return "short \\u escape";
    case JsonStringError::kBadUnicodeEscape:
      return "bad \\u escape";
    case JsonStringError::kLoneLowSurrogate:
    case JsonStringError::kLoneHighSurrogate:
    case JsonStringError::kBadLowSurrogate:
      return "lone surrogate";
  }
  return "bad string";
}

}  // namespace internal
}  // namespace weir
