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
  // Most strings (keys, feature names) are printable ASCII: one pass that
  // finds no byte to escape, then one copy.
  bool printable = true;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    printable &= c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  }
  if (printable) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
    return;
  }
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

}  // namespace internal
}  // namespace weir
