#include "base/log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace ocib::log {

static std::mutex g_mu;

bool debug_enabled() {
  static const bool on = std::getenv("OCIB_DEBUG") != nullptr;
  return on;
}

static void emit(std::string_view prefix, std::string_view msg) {
  std::string line;
  line.reserve(prefix.size() + msg.size() + 8);
  line += "ocib: ";
  line += prefix;
  line += msg;
  line += '\n';
  std::lock_guard<std::mutex> lk(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

namespace {

void hex_escape(std::string& out, unsigned char c) {
  static const char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 15];
}

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when it is not one.
size_t utf8_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  if (n == 3 && ((c == 0xe0 && b(i + 1) < 0xa0) || (c == 0xed && b(i + 1) >= 0xa0))) return 0;  // overlong, surrogate
  if (n == 4 && ((c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90))) return 0;  // overlong, > U+10FFFF
  return n;
}

}  // namespace

std::string escape_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t n = c >= 0x80 ? utf8_len(text, i) : 0;
    if (n == 0) {
      hex_escape(out, c);
      ++i;
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      // C1 controls (U+0080..U+009F): U+009B is CSI on terminals that honour 8-bit controls.
      out += "\\u00";
      static const char kHex[] = "0123456789abcdef";
      auto d = static_cast<unsigned char>(text[i + 1]);
      out += kHex[d >> 4];
      out += kHex[d & 15];
      i += 2;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string printable(std::string_view text, size_t max) {
  if (text.size() <= max) return escape_control(text);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;  // not inside a character
  return escape_control(text.substr(0, cut)) + "... (" + std::to_string(text.size()) + " bytes)";
}

void debug(std::string_view msg) {
  if (debug_enabled()) emit("debug: ", msg);
}
void warn(std::string_view msg) { emit("warning: ", msg); }
void error(std::string_view msg) { emit("error: ", msg); }

}  // namespace ocib::log
