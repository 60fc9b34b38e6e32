#include "base/duration.h"

#include <cctype>
#include <cstdlib>

namespace ocib {

std::optional<int64_t> parse_go_duration(const std::string& s) {
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    ++i;
  }
  double total = 0;
  if (i >= s.size()) return std::nullopt;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double v = std::strtod(s.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < s.size() && !std::isdigit(static_cast<unsigned char>(s[k])) && s[k] != '.') ++k;
    std::string unit = s.substr(j, k - j);
    double mult = unit == "ns" ? 1 : unit == "us" || unit == "\u00b5s" || unit == "\u03bcs" ? 1e3
                : unit == "ms" ? 1e6 : unit == "s" ? 1e9 : unit == "m" ? 60e9 : unit == "h" ? 3600e9 : 0;
    if (mult == 0) return std::nullopt;
    total += v * mult;
    i = k;
  }
  return static_cast<int64_t>(neg ? -total : total);
}

}  // namespace ocib
