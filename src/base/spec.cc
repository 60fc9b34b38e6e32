#include "base/spec.h"

#include <algorithm>

namespace ocib {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

Result<std::vector<std::string>> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, any = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      if (quoted && i + 1 < s.size() && s[i + 1] == '"') {
        cur += '"';
        ++i;
      } else {
        quoted = !quoted;
        any = true;
      }
    } else if (c == ',' && !quoted) {
      if (!cur.empty() || any) out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur += c;
    }
  }
  if (quoted) return Error::invalid("unterminated quote in \"" + s + "\"");
  if (!cur.empty() || any) out.push_back(cur);
  return out;
}

Result<TypedSpec> parse_typed_spec(const std::string& spec, const std::string& what) {
  TypedSpec out;
  auto parts = split_csv(spec);
  if (!parts.ok()) return Error::invalid("invalid " + what + " \"" + spec + "\": " + parts.error().message());
  for (const std::string& kv : *parts) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) return Error::invalid("invalid " + what + " \"" + spec + "\": expected key=value");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "type") out.type = v;
    else out.attrs[k] = v;
  }
  if (out.type.empty())
    return Error::invalid("invalid " + what + " \"" + spec + "\": type= is required");
  return out;
}

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::optional<std::string> best_match(const std::string& word, const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    return row[b.size()];
  };
  const std::string* best = nullptr;
  size_t best_d = 3;
  for (const auto& c : candidates) {
    size_t d = distance(word, c);
    if (d < best_d && d * 2 < std::max(word.size(), c.size())) {
      best = &c;
      best_d = d;
    }
  }
  return best ? std::optional<std::string>(*best) : std::nullopt;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  auto best = best_match(word, candidates);
  return best ? "; did you mean \"" + *best + "\"?" : "";
}

std::string did_you_mean_bk(const std::string& word, const std::vector<std::string>& candidates) {
  auto best = best_match(word, candidates);
  return best ? " (did you mean " + *best + "?)" : "";
}

std::optional<uint32_t> parse_u32(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  unsigned long v = std::stoul(s);
  if (v > 0xffffffffUL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace ocib
