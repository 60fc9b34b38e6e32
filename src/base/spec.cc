#include "base/spec.h"

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

Result<TypedSpec> parse_typed_spec(const std::string& spec, const std::string& what) {
  TypedSpec out;
  for (const std::string& kv : split_commas(spec)) {
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

std::optional<uint32_t> parse_u32(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  unsigned long v = std::stoul(s);
  if (v > 0xffffffffUL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace ocib
